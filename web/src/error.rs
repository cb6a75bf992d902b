//! Error types: target syntax, time specs, evaluation, data sources, and the HTTP-facing
//! [`ApiError`] that turns them into status codes (client mistakes are 4xx, spec §5).

use std::path::PathBuf;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::dashboards::DashboardError;

/// A time specification (`from=`, `until=`, an interval argument) that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimeError {
    /// graphite-web's own wording, kept because tools grep for it.
    #[error("Unknown day reference: {text}")]
    UnknownReference { text: String },
    #[error("Invalid offset: {text}")]
    InvalidOffset { text: String },
    #[error(
        "Invalid offset unit '{unit}' in '{text}' (units: s, min, h, d, w, mon, y; use 'min' for minutes)"
    )]
    InvalidUnit { unit: String, text: String },
    #[error("Day of month required after month name: {text}")]
    DayOfMonthRequired { text: String },
    #[error("time out of range: {text}")]
    OutOfRange { text: String },
}

/// A target expression that does not follow Graphite's grammar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("syntax error at offset {offset}: expected {expected}{}", found_text(.found))]
#[non_exhaustive]
pub struct ParseError {
    /// Byte offset into the target where parsing stopped.
    pub offset: usize,
    /// What the parser would have accepted there.
    pub expected: &'static str,
    /// The character found instead (None at the end of input).
    pub found: Option<char>,
}

fn found_text(found: &Option<char>) -> String {
    match found {
        Some(c) => format!(", found '{c}'"),
        None => ", found end of target".to_owned(),
    }
}

/// A failure reported by a [`crate::MetricSource`].
#[derive(Debug, thiserror::Error)]
#[error("metric source failed on '{what}': {source}")]
#[non_exhaustive]
pub struct SourceError {
    /// The pattern or metric name being read.
    pub what: String,
    /// The underlying failure.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl SourceError {
    /// Wraps any error with the name or pattern that was being read.
    pub fn new(
        what: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        SourceError {
            what: what.into(),
            source: source.into(),
        }
    }
}

/// Why evaluating a target failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    #[error("Received request for unknown function: {name}")]
    UnknownFunction { name: String },
    #[error("{func}(): parameter {param} expects {expected}, got {got}")]
    ParamType {
        func: String,
        param: String,
        expected: &'static str,
        got: String,
    },
    #[error("{func}(): invalid option for parameter {param}: {got}")]
    ParamOption {
        func: String,
        param: String,
        got: String,
    },
    #[error("{func}(): missing required parameter {param}")]
    MissingParam { func: String, param: String },
    #[error("{func}(): too many parameters")]
    TooManyParams { func: String },
    #[error("{func}(): unexpected keyword arguments: {keys}")]
    UnexpectedKwargs { func: String, keys: String },
    /// An input the function itself refuses (graphite-web's InputParameterError).
    #[error("{func}(): {message}")]
    Input { func: String, message: String },
    #[error("{func}(): invalid regular expression '{pattern}': {reason}")]
    Regex {
        func: String,
        pattern: String,
        reason: String,
    },
    #[error("{func}(): {source}")]
    Time {
        func: String,
        #[source]
        source: TimeError,
    },
    #[error("too many series matched by '{pattern}' ({count} > {limit})")]
    TooManySeries {
        pattern: String,
        count: usize,
        limit: usize,
    },
    #[error("too many points fetched ({count} > {limit})")]
    TooManyPoints { count: usize, limit: usize },
    #[error("target too deeply nested (more than {limit} levels)")]
    TooDeep { limit: usize },
    #[error("evaluation took longer than {limit_ms} ms")]
    Timeout { limit_ms: u64 },
    #[error(transparent)]
    Source(#[from] SourceError),
}

/// A graph that cannot be drawn as asked (`format=png|svg`, spec §19).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GraphError {
    /// An image parameter with a value of the wrong kind.
    #[error("Invalid parameters ({key}: expected {expected}, got '{value}')")]
    Param {
        key: &'static str,
        value: String,
        expected: &'static str,
    },
    /// A colour that is neither a known name nor RRGGBB[AA] hex.
    #[error(
        "Invalid parameters (unknown colour '{value}'; use a name like 'blue' or hex like 'ff8800')"
    )]
    Color { value: String },
    /// Width or height out of range.
    #[error("Invalid parameters ({key}={value}: must be from 1 to {limit})")]
    Size {
        key: &'static str,
        value: f64,
        limit: u32,
    },
    /// Axis settings that contradict each other or the data (e.g. a log scale over zero).
    #[error("cannot draw the Y axis: {reason}")]
    Axis { reason: &'static str },
    /// The embedded font did not parse (a broken build).
    #[error("embedded font {name} is unreadable")]
    Font { name: &'static str },
    /// The PNG encoder failed.
    #[error("PNG encoding failed: {source}")]
    Encode {
        #[from]
        source: png::EncodingError,
    },
}

/// Why an event could not be stored (`POST /events/`, spec §17). Answered as JSON
/// `{"error": "..."}` like graphite-web's own event errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// No `[web] events_file`: this server keeps no events.
    #[error("events are disabled on this server (no web.events_file)")]
    Disabled,
    #[error("invalid JSON body: {reason}")]
    Json { reason: String },
    #[error("the body must be a JSON object, got {got}")]
    NotAnObject { got: &'static str },
    #[error("\"what\" is required")]
    MissingWhat,
    #[error("\"what\" must be a string, got {got}")]
    What { got: &'static str },
    /// graphite-web's own wording.
    #[error("\"tags\" must be an array or space-separated string")]
    Tags,
    #[error("\"when\" must be a number of seconds since the epoch (0 to 253402300799), got {got}")]
    When { got: String },
    #[error("event body too large (more than {limit} bytes, web.events_max_body)")]
    TooLarge { limit: usize },
    /// `web.events_max` events are stored already.
    #[error("the events store is full ({limit} events, web.events_max)")]
    Full { limit: usize },
    #[error("could not write the events file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl EventError {
    fn status(&self) -> StatusCode {
        match self {
            EventError::Disabled => StatusCode::FORBIDDEN,
            EventError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            // Not the client's mistake: the server's own bound or disk.
            EventError::Full { .. } => StatusCode::INSUFFICIENT_STORAGE,
            EventError::Io { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// Errors of the HTTP API; each maps to one status code and a short plain-text body.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    #[error("target {index}: {source}")]
    Syntax {
        index: usize,
        #[source]
        source: ParseError,
    },
    #[error("target {index} is too long ({len} > {limit} bytes)")]
    TargetTooLong {
        index: usize,
        len: usize,
        limit: usize,
    },
    #[error("Invalid parameters ({source})")]
    Time {
        #[source]
        source: TimeError,
    },
    #[error("Invalid parameters (Invalid empty time range)")]
    EmptyRange,
    #[error("Invalid parameters ({message})")]
    Param { message: String },
    #[error("format not supported: {format} ({reason})")]
    Format {
        format: String,
        reason: &'static str,
    },
    #[error("{source}")]
    Eval {
        #[source]
        source: EvalError,
    },
    #[error("too many results from '{pattern}' ({count} > {limit})")]
    TooManyResults {
        pattern: String,
        count: usize,
        limit: usize,
    },
    /// JSON-bodied errors of the tag endpoints (`{"error": "..."}`, spec §16).
    #[error("{message}")]
    TagJson { message: &'static str },
    #[error("internal error: {message}")]
    Internal { message: String },
    #[error("{source}")]
    Graph {
        #[from]
        source: GraphError,
    },
    #[error("{source}")]
    Dashboard {
        #[from]
        source: DashboardError,
    },
    /// `/events/` errors, JSON-bodied.
    #[error("{source}")]
    Event {
        #[from]
        source: EventError,
    },
}

impl ApiError {
    pub(crate) fn param(message: impl Into<String>) -> Self {
        ApiError::Param {
            message: message.into(),
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::Eval { source } => match source {
                EvalError::Timeout { .. } => StatusCode::SERVICE_UNAVAILABLE,
                EvalError::Source(_) => StatusCode::INTERNAL_SERVER_ERROR,
                _ => StatusCode::BAD_REQUEST,
            },
            ApiError::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Graph {
                source: GraphError::Font { .. } | GraphError::Encode { .. },
            } => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Dashboard { source } => source.status(),
            ApiError::Event { source } => source.status(),
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

impl From<EvalError> for ApiError {
    fn from(source: EvalError) -> Self {
        ApiError::Eval { source }
    }
}

impl From<TimeError> for ApiError {
    fn from(source: TimeError) -> Self {
        ApiError::Time { source }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        } else {
            tracing::debug!(error = %self, "rejected request");
        }
        let mut response = if let ApiError::TagJson { message } = &self {
            (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
        } else if let ApiError::Event { source } = &self {
            let message = source.to_string();
            (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
        } else {
            let mut body = self.to_string();
            body.push('\n');
            let mut r = (status, body).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            r
        };
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        response
    }
}
