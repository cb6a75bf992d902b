//! The browser UI: a single page served at `/` with its scripts and styles embedded in the
//! binary (plain ES modules, no build step, nothing fetched from the network), and the JSON
//! API it saves dashboards through:
//!
//! | path | method | does |
//! |---|---|---|
//! | `/`, `/ui/<file>` | GET | the page and its assets |
//! | `/dashboard/<name>` | GET | redirects to the page showing that dashboard |
//! | `/api/dashboards` | GET | `[{"name", "title", "graphs"}]` |
//! | `/api/dashboards/<name>` | GET, PUT, DELETE | load, save (JSON body), delete |
//!
//! Saving uses PUT and DELETE, never POST, so a cross-site form cannot change dashboards
//! (browsers preflight PUT/DELETE, and CORS allows only GET and POST).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::dashboards::{self, Store};
use crate::error::ApiError;
use crate::http::AppState;

/// One embedded file: name under `/ui/`, content type, bytes.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

macro_rules! asset {
    ($name:literal, $type:expr) => {
        Asset {
            name: $name,
            content_type: $type,
            body: include_str!(concat!("../assets/ui/", $name)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

static ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("tree.js", JS),
    asset!("composer.js", JS),
    asset!("dashboard.js", JS),
    asset!("chart.js", JS),
    asset!("timerange.js", JS),
    asset!("favicon.svg", "image/svg+xml"),
];

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/ui/{file}", get(asset))
        .route("/dashboard/{name}", get(dashboard_page))
        .route("/api/dashboards", get(list))
        .route("/api/dashboards/", get(list))
        .route("/api/dashboards/{name}", get(load).put(save).delete(delete))
}

fn serve_asset(a: &Asset) -> Response {
    let mut r = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(a.content_type),
        )],
        a.body,
    )
        .into_response();
    // Revalidate every time: the files change with the binary, and they are small.
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

async fn index() -> Response {
    serve_asset(&ASSETS[0])
}

async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.name == file) {
        Some(a) => serve_asset(a),
        None => (StatusCode::NOT_FOUND, "no such file\n").into_response(),
    }
}

/// graphite-web's dashboard URL shape, for bookmarks: `/dashboard/<name>` → the page.
async fn dashboard_page(Path(name): Path<String>) -> Result<Response, ApiError> {
    dashboards::check_name(&name)?;
    // Relative, so the redirect also works behind a proxy that adds a path prefix.
    let location = format!("../#/dashboard/{name}");
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    Ok(r)
}

fn store(state: &AppState) -> Store {
    Store::new(state.config().dashboards_dir.clone())
}

async fn list(State(state): State<AppState>) -> Result<Response, ApiError> {
    let list = store(&state).list().await?;
    Ok(axum::Json(list).into_response())
}

async fn load(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let d = store(&state).load(&name).await?;
    Ok(axum::Json(d).into_response())
}

async fn save(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    dashboards::check_name(&name)?;
    let d = dashboards::parse(&name, &body)?;
    store(&state).save(&name, &d).await?;
    tracing::info!(dashboard = %name, graphs = d.graphs.len(), "dashboard saved");
    Ok(axum::Json(serde_json::json!({ "name": name })).into_response())
}

async fn delete(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    store(&state).delete(&name).await?;
    tracing::info!(dashboard = %name, "dashboard deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}
