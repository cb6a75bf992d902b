//! Graphite events over HTTP (spec §17, §18.6): `POST /events/`, `/events/get_data` with
//! every filter, time forms and jsonp, the errors, the `events()` render function, and the
//! file surviving a restart of the server.

use std::path::Path;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use charcoal_web::{AppState, Config, app, serve};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::util::{NOW, Reply, enc, get, post_form, send, source};

fn config(file: &Path) -> Config {
    Config {
        events_file: Some(file.to_owned()),
        ..Config::default()
    }
}

fn events_app(config: Config) -> Router {
    app(AppState::with_clock(source(), config, || NOW).expect("valid config"))
}

async fn post_json(app: &Router, uri: &str, body: &str) -> Reply {
    let req = Request::post(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .expect("request");
    send(app, req).await
}

async fn post_ok(app: &Router, body: &str) {
    let r = post_json(app, "/events/", body).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, ""), "{body}");
}

/// Four events around NOW (2023-11-14 23:00:00 UTC), posted in an order different from time.
async fn fixture(app: &Router) {
    post_ok(
        app,
        &format!(
            r#"{{"what": "db deploy", "tags": "db deploy", "when": {}}}"#,
            NOW - 1800
        ),
    )
    .await;
    post_ok(
        app,
        &format!(
            r#"{{"what": "deploy v1", "tags": ["deploy", "web"], "data": "rolled out", "when": {}}}"#,
            NOW - 3600
        ),
    )
    .await;
    // No `when`: now. Fractional seconds are kept and shown truncated.
    post_ok(app, r#"{"what": "incident", "tags": "ops, web"}"#).await;
    post_ok(
        app,
        &format!(
            r#"{{"what": "old", "tags": ["deploy"], "when": {}.75}}"#,
            NOW - 2 * 86400
        ),
    )
    .await;
}

fn whats(r: &Reply) -> Vec<String> {
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.json()
        .as_array()
        .expect("array")
        .iter()
        .map(|e| e["what"].as_str().expect("what").to_owned())
        .collect()
}

#[tokio::test]
async fn posted_events_come_back_ordered_by_time() {
    let dir = tempfile::tempdir().unwrap();
    let app = events_app(config(&dir.path().join("events.jsonl")));
    fixture(&app).await;
    let r = get(&app, "/events/get_data").await;
    assert_eq!(r.content_type(), "application/json");
    assert_eq!(
        r.json(),
        json!([
            {"when": NOW - 2 * 86400, "what": "old", "data": "", "tags": ["deploy"], "id": 4},
            {"when": NOW - 3600, "what": "deploy v1", "data": "rolled out", "tags": ["deploy", "web"], "id": 2},
            {"when": NOW - 1800, "what": "db deploy", "data": "", "tags": ["db", "deploy"], "id": 1},
            {"when": NOW, "what": "incident", "data": "", "tags": ["ops", "web"], "id": 3},
        ])
    );
    // graphite-web's key order, as Grafana's tooling sees it.
    assert!(
        r.body
            .starts_with(r#"[{"when":1699830000,"what":"old","data":"","tags":["deploy"],"id":4}"#),
        "{}",
        r.body
    );
    // `/events` without the slash, and the POST reaches the file.
    let r = post_json(&app, "/events", r#"{"what": "no slash"}"#).await;
    assert_eq!(r.status, StatusCode::OK);
    let text = std::fs::read_to_string(dir.path().join("events.jsonl")).unwrap();
    assert_eq!(text.lines().count(), 5);
    assert!(
        text.lines()
            .last()
            .unwrap()
            .contains(r#""what":"no slash""#)
    );
}

#[tokio::test]
async fn tag_filters_and_sets() {
    let dir = tempfile::tempdir().unwrap();
    let app = events_app(config(&dir.path().join("events.jsonl")));
    fixture(&app).await;
    let q = |query: &str| format!("/events/get_data?{query}");
    let cases: &[(&str, &[&str])] = &[
        ("tags=deploy", &["old", "deploy v1", "db deploy"]),
        ("tags=deploy%20web", &["deploy v1"]),
        ("tags=web%20deploy&set=intersection", &["deploy v1"]),
        ("tags=deploy%20db%20web", &[]),
        // Every listed tag is needed, even one no event carries.
        ("tags=deploy%20nosuch", &[]),
        ("tags=db%20ops&set=union", &["db deploy", "incident"]),
        ("tags=nosuch&set=union", &[]),
        ("tags=deploy&set=bogus", &["old", "deploy v1", "db deploy"]),
        // Grafana users type commas; both separators work.
        ("tags=deploy,web", &["deploy v1"]),
        ("tags=deploy,%20web", &["deploy v1"]),
        ("tags=", &[]),
        ("tags=web&from=-2h", &["deploy v1", "incident"]),
    ];
    for (query, expected) in cases {
        assert_eq!(whats(&get(&app, &q(query)).await), *expected, "{query}");
    }
    // POST parameters are read too (graphite-web merges them into the query).
    let r = post_form(&app, "/events/get_data", "tags=db&from=-1d").await;
    assert_eq!(whats(&r), ["db deploy"]);
}

#[tokio::test]
async fn every_graphite_time_form_bounds_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let app = events_app(config(&dir.path().join("events.jsonl")));
    fixture(&app).await;
    let cases: &[(&str, &[&str])] = &[
        ("from=-1h", &["deploy v1", "db deploy", "incident"]),
        ("from=-59min", &["db deploy", "incident"]),
        ("from=-3d&until=-1d", &["old"]),
        ("from=-1h&until=-30min", &["deploy v1", "db deploy"]),
        ("from=1699999200&until=1699999200", &["deploy v1"]),
        (
            "from=22:00_20231114&until=22:30_20231114",
            &["deploy v1", "db deploy"],
        ),
        (
            "from=10pm_20231114",
            &["deploy v1", "db deploy", "incident"],
        ),
        ("from=20231114", &["deploy v1", "db deploy", "incident"]),
        ("from=11/12/23&until=11/13/23", &["old"]),
        ("from=yesterday", &["deploy v1", "db deploy", "incident"]),
        ("from=midnight-2d&until=today", &["old"]),
        (
            "from=now-2h&until=now",
            &["deploy v1", "db deploy", "incident"],
        ),
        (
            "from=-1h&until=now&tz=Europe/Berlin",
            &["deploy v1", "db deploy", "incident"],
        ),
        // A reversed window is empty (graphite-web does not swap here).
        ("from=now&until=-1h", &[]),
        // `now` moves the reference of relative times.
        ("from=-10min&now=1699999500", &["deploy v1"]),
        // `until` defaults to now: nothing from the future.
        ("from=now", &["incident"]),
    ];
    for (query, expected) in cases {
        let r = get(&app, &format!("/events/get_data?{query}")).await;
        assert_eq!(whats(&r), *expected, "{query}");
    }
    post_ok(
        &app,
        &format!(r#"{{"what": "future", "when": {}}}"#, NOW + 60),
    )
    .await;
    assert_eq!(
        whats(&get(&app, "/events/get_data?from=now").await),
        ["incident"]
    );
    assert_eq!(
        whats(&get(&app, "/events/get_data?from=now&until=%2B1h").await),
        ["incident", "future"]
    );
    let r = get(&app, "/events/get_data?from=foo").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("Unknown day reference: foo"), "{}", r.body);
}

#[tokio::test]
async fn jsonp_and_cors() {
    let dir = tempfile::tempdir().unwrap();
    let app = events_app(config(&dir.path().join("events.jsonl")));
    fixture(&app).await;
    let r = get(&app, "/events/get_data?from=-1h&until=-45min&jsonp=cb").await;
    assert_eq!(r.content_type(), "text/javascript");
    assert_eq!(
        r.body,
        r#"cb([{"when":1699999200,"what":"deploy v1","data":"rolled out","tags":["deploy","web"],"id":2}])"#
    );
    let req = Request::post("/events/")
        .header("origin", "http://localhost:3000")
        .header("content-type", "application/json")
        .body(Body::from(r#"{"what": "from a browser"}"#))
        .unwrap();
    let r = send(&app, req).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["access-control-allow-origin"], "*");
    let req = Request::builder()
        .method("OPTIONS")
        .uri("/events/")
        .header("origin", "http://localhost:3000")
        .body(Body::empty())
        .unwrap();
    let r = send(&app, req).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(r.headers.contains_key("access-control-allow-methods"));
}

#[tokio::test]
async fn bad_posts_are_json_errors() {
    let dir = tempfile::tempdir().unwrap();
    let app = events_app(Config {
        events_max: 2,
        events_max_body: 200,
        ..config(&dir.path().join("events.jsonl"))
    });
    let cases: &[(&str, u16, &str)] = &[
        ("not json", 400, "invalid JSON body"),
        (
            "[1, 2]",
            400,
            "the body must be a JSON object, got an array",
        ),
        (r#"{"tags": "a"}"#, 400, "\"what\" is required"),
        // graphite-web's own message for a bad `tags` (spec §17).
        (
            r#"{"what": "x", "tags": 5}"#,
            400,
            "\"tags\" must be an array or space-separated string",
        ),
        (
            r#"{"what": "x", "tags": {"a": 1}}"#,
            400,
            "\"tags\" must be an array or space-separated string",
        ),
        (
            r#"{"what": "x", "when": "yesterday"}"#,
            400,
            "\"when\" must be",
        ),
    ];
    for (body, status, message) in cases {
        let r = post_json(&app, "/events/", body).await;
        assert_eq!(r.status.as_u16(), *status, "{body}: {}", r.body);
        assert_eq!(r.content_type(), "application/json");
        let error = r.json()["error"].as_str().unwrap_or_default().to_owned();
        assert!(error.starts_with(message), "{body}: {error}");
    }
    let big = format!(r#"{{"what": "{}"}}"#, "x".repeat(300));
    // In memory there is no Content-Length: the body is cut off while read.
    let r = post_json(&app, "/events/", &big).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("events_max_body")
    );
    // A declared length is refused before reading.
    let req = Request::post("/events/")
        .header("content-type", "application/json")
        .header("content-length", big.len().to_string())
        .body(Body::from(big.clone()))
        .unwrap();
    let r = send(&app, req).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    post_ok(&app, r#"{"what": "one"}"#).await;
    post_ok(&app, r#"{"what": "two"}"#).await;
    let r = post_json(&app, "/events/", r#"{"what": "three"}"#).await;
    assert_eq!(r.status, StatusCode::INSUFFICIENT_STORAGE);
    assert!(r.json()["error"].as_str().unwrap().contains("events_max"));
    // Nothing of the refused posts was stored.
    assert_eq!(whats(&get(&app, "/events/get_data").await), ["one", "two"]);
    let r = get(&app, "/events/").await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn without_a_file_events_are_disabled() {
    let app = events_app(Config::default());
    let r = post_json(&app, "/events/", r#"{"what": "x"}"#).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("events are disabled"),
        "{}",
        r.body
    );
    let r = get(&app, "/events/get_data?tags=x").await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "[]"));
    // events() still answers: a series of nulls.
    let r = get(
        &app,
        &format!(
            "/render?target={}&from=-10s&format=json",
            enc("events('x')")
        ),
    )
    .await;
    let points = r.json()[0]["datapoints"].as_array().unwrap().clone();
    assert_eq!(points.len(), 10);
    assert!(points.iter().all(|p| p[0].is_null()));
}

fn datapoints(v: &Value) -> Vec<(Option<f64>, i64)> {
    v["datapoints"]
        .as_array()
        .expect("datapoints")
        .iter()
        .map(|p| (p[0].as_f64(), p[1].as_i64().expect("timestamp")))
        .collect()
}

#[tokio::test]
async fn the_events_function_counts_per_second() {
    let dir = tempfile::tempdir().unwrap();
    let app = events_app(config(&dir.path().join("events.jsonl")));
    for (when, tags) in [
        ("1699999990", "deploy web"),
        ("1699999992.4", "deploy db"),
        ("1699999992.9", "deploy web"),
        ("1699999995", "web"),
        // At the window's end: outside [from, until).
        ("1700000000", "deploy web"),
    ] {
        post_ok(
            &app,
            &format!(r#"{{"what": "e", "tags": "{tags}", "when": {when}}}"#),
        )
        .await;
    }
    let render = |target: &str, extra: &str| {
        format!(
            "/render?target={}&from=1699999990&until=1700000000&format=json{extra}",
            enc(target)
        )
    };
    let r = get(&app, &render("events('deploy')", "")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let j = r.json();
    assert_eq!(j[0]["target"], r#"events("deploy")"#);
    assert_eq!(j[0]["tags"], json!({"name": r#"events("deploy")"#}));
    let t0 = 1_699_999_990;
    let expected: Vec<(Option<f64>, i64)> = (0..10)
        .map(|i| {
            let v = match i {
                0 => Some(1.0),
                2 => Some(2.0),
                _ => None,
            };
            (v, t0 + i)
        })
        .collect();
    assert_eq!(datapoints(&j[0]), expected);
    // Several tags: all of them; '*': every event; the name joins the arguments.
    let r = get(&app, &render("events('deploy', 'web')", "")).await;
    let j = r.json();
    assert_eq!(j[0]["target"], r#"events("deploy", "web")"#);
    let counted: Vec<(Option<f64>, i64)> = datapoints(&j[0])
        .into_iter()
        .filter(|p| p.0.is_some())
        .collect();
    assert_eq!(counted, [(Some(1.0), t0), (Some(1.0), t0 + 2)]);
    let r = get(&app, &render("events('*')", "")).await;
    let total: f64 = datapoints(&r.json()[0]).iter().filter_map(|p| p.0).sum();
    assert_eq!(total, 4.0);
    // Consolidated by sum (Grafana sends maxDataPoints): one point holding all four.
    let r = get(&app, &render("events('*')", "&maxDataPoints=1")).await;
    let values: Vec<Option<f64>> = datapoints(&r.json()[0]).iter().map(|p| p.0).collect();
    assert_eq!(values, [Some(4.0)]);
    // Composes like any series (what Grafana's target annotations do).
    let r = get(&app, &render("drawAsInfinite(events('web'))", "")).await;
    assert_eq!(r.status, StatusCode::OK);
    // No tag is an error; a too long window is refused before allocating.
    let r = get(&app, &render("events()", "")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body.contains("events(): missing required parameter tags"),
        "{}",
        r.body
    );
    let small = events_app(Config {
        max_points: 100,
        ..config(&dir.path().join("events.jsonl"))
    });
    let r = get(
        &small,
        &format!("/render?target={}&from=-1h&format=json", enc("events('*')")),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    // Listed in the catalogue like graphite-web's.
    let r = get(&app, "/functions/events").await;
    assert_eq!(r.json()["group"], "Special");
    assert_eq!(r.json()["function"], "events(*tags)");
}

#[tokio::test]
async fn events_survive_a_restart_on_a_real_socket() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.jsonl");
    let client = reqwest::Client::new();
    for round in 1..=2u64 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let state = AppState::with_clock(source(), config(&file), || NOW).unwrap();
        let server = serve(listener, state, CancellationToken::new()).unwrap();
        let base = format!("http://{}", server.local_addr());
        let r = client
            .post(format!("{base}/events/"))
            .body(format!(r#"{{"what": "round {round}", "tags": ["r"]}}"#))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let got: Value = client
            .get(format!("{base}/events/get_data?tags=r"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let ids: Vec<u64> = got
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_u64().unwrap())
            .collect();
        // Everything posted before the restart is back, and ids go on increasing.
        assert_eq!(ids, (1..=round).collect::<Vec<_>>());
        server.shutdown().await.unwrap();
    }
}
