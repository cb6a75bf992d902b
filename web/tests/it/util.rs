//! Shared fixtures: an in-memory source with known data, a fixed clock, request helpers.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use charcoal_web::{AppState, Config, MemorySource, app};
use http_body_util::BodyExt;
use tower::ServiceExt;

/// The fixed "now" of the in-memory fixtures (a multiple of 3600).
pub const NOW: i64 = 1_700_002_800;

/// `test.web{1,2}.cpu.{user,idle}` and friends, one point a minute for the last 2 days.
pub fn source() -> Arc<MemorySource> {
    let src = Arc::new(MemorySource::new());
    let minutes = 2 * 24 * 60;
    for (host, base) in [("web1", 10.0), ("web2", 20.0)] {
        for (metric, off) in [("user", 0.0), ("idle", 50.0)] {
            let name = format!("test.{host}.cpu.{metric}");
            src.insert(
                &name,
                60,
                (0..minutes).map(|k| (NOW - k * 60, base + off + (k % 7) as f64)),
            );
        }
    }
    // A gap of nulls in the last ten minutes except every third point.
    src.insert(
        "test.sparse.gauge",
        60,
        (0..60)
            .filter(|k| k % 3 == 0)
            .map(|k| (NOW - k * 60, k as f64)),
    );
    src.insert(
        "disk.used;dc=east;host=web1",
        60,
        (0..60).map(|k| (NOW - k * 60, 1.0)),
    );
    src.insert(
        "disk.used;dc=east;host=db1",
        60,
        (0..60).map(|k| (NOW - k * 60, 2.0)),
    );
    src.insert(
        "disk.used;dc=west;host=web2",
        60,
        (0..60).map(|k| (NOW - k * 60, 4.0)),
    );
    src
}

pub fn state_with(config: Config) -> AppState {
    AppState::with_clock(source(), config, || NOW).expect("valid config")
}

pub fn router() -> Router {
    app(state_with(Config::default()))
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
    /// The body as sent (msgpack is binary).
    pub bytes: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn content_type(&self) -> &str {
        self.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

pub async fn send(app: &Router, req: Request<Body>) -> Reply {
    let resp = app.clone().oneshot(req).await.expect("router never fails");
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
        bytes: bytes.to_vec(),
    }
}

pub async fn get(app: &Router, uri: &str) -> Reply {
    send(app, Request::get(uri).body(Body::empty()).expect("request")).await
}

pub async fn post_form(app: &Router, uri: &str, body: &str) -> Reply {
    let req = Request::post(uri)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(body.to_owned()))
        .expect("request");
    send(app, req).await
}

/// Percent-encodes like JavaScript's encodeURIComponent (what Grafana uses).
pub fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'!'
            | b'~'
            | b'*'
            | b'\''
            | b'('
            | b')' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
