//! The browser UI's assets, the dashboard API, and the dashboards shipped in `dashboards/`.

use std::path::{Path, PathBuf};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use charcoal_web::{AppState, Config, app, check_target};

use crate::util::{Reply, enc, get, send, source};

fn router_with(dir: &Path) -> Router {
    let config = Config {
        dashboards_dir: dir.to_owned(),
        ..Config::default()
    };
    app(AppState::with_clock(source(), config, || crate::util::NOW).expect("valid config"))
}

async fn put(app: &Router, uri: &str, body: &str) -> Reply {
    let req = Request::put(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .expect("request");
    send(app, req).await
}

async fn delete(app: &Router, uri: &str) -> Reply {
    send(
        app,
        Request::delete(uri).body(Body::empty()).expect("request"),
    )
    .await
}

#[tokio::test]
async fn page_and_every_imported_module_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let app = router_with(dir.path());
    let r = get(&app, "/").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.content_type().starts_with("text/html"));
    assert!(r.body.contains(r#"<script type="module" src="ui/app.js">"#));
    // No CDN: nothing the page or its scripts load comes from another host.
    let mut pending = vec!["app.js".to_owned(), "style.css".to_owned()];
    let mut seen = Vec::new();
    while let Some(file) = pending.pop() {
        if seen.contains(&file) {
            continue;
        }
        let r = get(&app, &format!("/ui/{file}")).await;
        assert_eq!(r.status, StatusCode::OK, "{file}");
        assert!(
            !r.body.contains("http://") && !r.body.contains("https://"),
            "{file} links out"
        );
        if file.ends_with(".js") {
            assert!(r.content_type().starts_with("text/javascript"), "{file}");
            for line in r.body.lines() {
                if let Some(rest) = line.split(" from './").nth(1) {
                    pending.push(rest.split('\'').next().unwrap_or("").to_owned());
                }
            }
        }
        seen.push(file);
    }
    assert!(seen.len() >= 7, "{seen:?}");
    assert_eq!(get(&app, "/ui/nope.js").await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        get(&app, "/ui/..%2FCargo.toml").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn dashboard_urls_redirect_to_the_page() {
    let dir = tempfile::tempdir().unwrap();
    let app = router_with(dir.path());
    let r = get(&app, "/dashboard/host-overview").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers.get("location").unwrap(),
        "../#/dashboard/host-overview"
    );
    let r = get(&app, "/dashboard/..%2Fetc").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn dashboard_api_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let boards = dir.path().join("boards");
    let app = router_with(&boards);
    let r = get(&app, "/api/dashboards").await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "[]"));

    let doc = r#"{"title": "Web", "from": "-1d", "variables": [{"name": "host", "query": "test.*"}],
        "graphs": [{"title": "CPU $host", "targets": ["test.$host.cpu.user"], "params": {"areaMode": "stacked"}}]}"#;
    let r = put(&app, "/api/dashboards/web-1", doc).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(boards.join("web-1.json").exists());
    let saved = get(&app, "/api/dashboards/web-1").await.json();
    assert_eq!(saved["title"], "Web");
    assert_eq!(saved["from"], "-1d");
    assert_eq!(saved["variables"][0]["default"], "*");
    assert_eq!(saved["graphs"][0]["targets"][0], "test.$host.cpu.user");
    assert_eq!(saved["graphs"][0]["params"]["areaMode"], "stacked");
    let list = get(&app, "/api/dashboards").await.json();
    assert_eq!(
        list,
        serde_json::json!([{"name": "web-1", "title": "Web", "graphs": 1}])
    );

    // Names that could leave the directory, and broken documents, are refused.
    for name in ["..", "a.b", "%2e%2e%2fx", "a%2Fb", "with%20space"] {
        let r = put(&app, &format!("/api/dashboards/{name}"), doc).await;
        assert!(
            r.status == StatusCode::BAD_REQUEST || r.status == StatusCode::NOT_FOUND,
            "{name}: {}",
            r.status
        );
    }
    assert!(!dir.path().join("x.json").exists());
    let r = put(
        &app,
        "/api/dashboards/bad",
        r#"{"graphs": [{"targets": "a.b"}]}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("invalid dashboard 'bad'"), "{}", r.body);
    let r = put(&app, "/api/dashboards/bad", "not json").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let huge = format!(
        r#"{{"graphs": [], "description": "{}"}}"#,
        "x".repeat(1_100_000)
    );
    assert_eq!(
        put(&app, "/api/dashboards/huge", &huge).await.status,
        StatusCode::PAYLOAD_TOO_LARGE
    );

    assert_eq!(
        delete(&app, "/api/dashboards/web-1").await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        get(&app, "/api/dashboards/web-1").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        delete(&app, "/api/dashboards/web-1").await.status,
        StatusCode::NOT_FOUND
    );
    // Cross-site forms can only GET or POST: writes use PUT/DELETE, which CORS does not allow.
    let r = send(
        &app,
        Request::post("/api/dashboards/web-1")
            .body(Body::from(doc))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
}

fn shipped() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../dashboards")
}

/// The repository's dashboards load through the API, their targets parse, and every target
/// renders (so each function they use exists) with variables set to "all".
#[tokio::test]
async fn shipped_dashboards_are_valid() {
    let app = router_with(&shipped());
    let list = get(&app, "/api/dashboards").await.json();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            assert!(d.get("error").is_none(), "{d}");
            d["name"].as_str().unwrap()
        })
        .collect();
    for expected in ["host-overview", "statsd-carbon", "fleet", "charcoal-self"] {
        assert!(names.contains(&expected), "{names:?}");
    }
    for name in names {
        let d = get(&app, &format!("/api/dashboards/{name}")).await.json();
        let graphs = d["graphs"].as_array().unwrap();
        assert!(!graphs.is_empty(), "{name}");
        for g in graphs {
            for t in g["targets"].as_array().unwrap() {
                let mut target = t.as_str().unwrap().to_owned();
                for v in d["variables"].as_array().into_iter().flatten() {
                    target = target.replace(&format!("${}", v["name"].as_str().unwrap()), "*");
                }
                check_target(&target).unwrap_or_else(|e| panic!("{name}: {target}: {e}"));
                let r = get(
                    &app,
                    &format!("/render?format=json&from=-1h&target={}", enc(&target)),
                )
                .await;
                assert_eq!(r.status, StatusCode::OK, "{name}: {target}: {}", r.body);
            }
            let params = g["params"].as_object().cloned().unwrap_or_default();
            let query: Vec<String> = params
                .iter()
                .map(|(k, v)| format!("{k}={}", enc(v.as_str().unwrap())))
                .collect();
            let r = get(
                &app,
                &format!("/render?target=test.web1.cpu.user&{}", query.join("&")),
            )
            .await;
            assert_eq!(
                r.status,
                StatusCode::OK,
                "{name}: params {query:?}: {}",
                r.body
            );
        }
    }
}

/// The Grafana boards are generated from ours: same titles, same targets, in order.
#[test]
fn grafana_dashboards_match_ours() {
    let mut names: Vec<String> = std::fs::read_dir(shipped())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|f| f.strip_suffix(".json").map(str::to_owned))
        .collect();
    names.sort();
    assert!(names.len() >= 4, "{names:?}");
    for name in names {
        let read = |p: PathBuf| -> serde_json::Value {
            serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
        };
        let ours = read(shipped().join(format!("{name}.json")));
        let theirs = read(shipped().join(format!("grafana/{name}.json")));
        assert_eq!(theirs["title"], ours["title"], "{name}");
        let panels = theirs["panels"].as_array().unwrap();
        let graphs = ours["graphs"].as_array().unwrap();
        assert_eq!(
            panels.len(),
            graphs.len(),
            "{name}: regenerate with make-grafana.py"
        );
        for (p, g) in panels.iter().zip(graphs) {
            let targets: Vec<&serde_json::Value> = p["targets"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| &t["target"])
                .collect();
            let ours: Vec<&serde_json::Value> = g["targets"].as_array().unwrap().iter().collect();
            assert_eq!(targets, ours, "{name}: {}", g["title"]);
            assert_eq!(p["datasource"]["uid"], "charcoal");
        }
    }
    let ds =
        std::fs::read_to_string(shipped().join("grafana/provisioning/datasources/charcoal.yaml"))
            .unwrap();
    assert!(ds.contains("type: graphite") && ds.contains("url: http://127.0.0.1:8080"));
}
