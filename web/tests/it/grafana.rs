//! Replays the requests Grafana's Graphite data source sends (spec §18, frontend and backend
//! mode) and checks the answers parse the way Grafana's code reads them.

use axum::http::StatusCode;
use serde_json::Value;

use crate::util::{NOW, enc, get, post_form, router, send};

/// What Grafana's `convertResponseToDataFrames` needs: an array of objects with a string
/// `target` and `datapoints` of `[number|null, integer seconds]`; `tags` optional, string values.
/// A series as Grafana sees it: name and `(value, seconds)` points.
type GrafanaSeries = (String, Vec<(Option<f64>, i64)>);

fn parse_like_grafana(body: &str) -> Vec<GrafanaSeries> {
    let v: Value = serde_json::from_str(body)
        .unwrap_or_else(|e| panic!("Grafana: invalid JSON ({e}): {body}"));
    let list = v.as_array().expect("Grafana: Missing series in result");
    list.iter()
        .map(|s| {
            let target = s["target"]
                .as_str()
                .expect("target must be a string")
                .to_owned();
            if let Some(tags) = s.get("tags") {
                assert!(
                    tags.as_object()
                        .expect("tags object")
                        .values()
                        .all(Value::is_string),
                    "tag values are strings"
                );
            }
            let points = s["datapoints"]
                .as_array()
                .expect("datapoints array")
                .iter()
                .map(|p| {
                    let p = p.as_array().expect("[value, ts]");
                    assert_eq!(p.len(), 2);
                    assert!(p[0].is_null() || p[0].is_number());
                    (
                        p[0].as_f64(),
                        p[1].as_i64().expect("timestamp in integer seconds"),
                    )
                })
                .collect();
            (target, points)
        })
        .collect()
}

/// Grafana splits the returned name on spaces and takes the last token as the refId.
fn split_ref(target: &str) -> (&str, &str) {
    target.rsplit_once(' ').expect("refId suffix")
}

#[tokio::test]
async fn save_and_test_frontend_mode() {
    // Body copied from spec §18.2 (current frontend mode).
    let body = "target=aliasSub(constantLine(100)%2C%20%22(%5E.*%24)%22%2C%20%22%5C1%20A%22)&from=-1h&until=now&format=json&maxDataPoints=300";
    let r = post_form(&router(), "/render", body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let series = parse_like_grafana(&r.body);
    assert_eq!(series.len(), 1);
    assert_eq!(series[0].0, "100.0 A");
    let ts: Vec<i64> = series[0].1.iter().map(|p| p.1).collect();
    assert_eq!(ts, [NOW - 3600, NOW - 1800, NOW]);
    assert!(series[0].1.iter().all(|p| p.0 == Some(100.0)));
    assert_eq!(r.json()[0]["tags"], serde_json::json!({"name": "100.0"}));
}

#[tokio::test]
async fn save_and_test_backend_mode() {
    // Go's url.Values encodes keys in sorted order.
    let body = format!(
        "format=json&from={}&maxDataPoints=100&target=constantLine%28100%29&until={NOW}",
        NOW - 3600
    );
    let r = post_form(&router(), "/render", &body).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(parse_like_grafana(&r.body)[0].0, "100.0");
    // Old Grafana (5.x) tested with a find query.
    let r = get(&router(), "/metrics/find?query=*").await;
    assert_eq!(r.status, StatusCode::OK);
    r.json();
}

#[tokio::test]
async fn version_and_function_list_load() {
    let r = get(&router(), "/version").await;
    let version = r.body.trim();
    let parts: Vec<u32> = version
        .split('.')
        .map(|p| p.parse().expect("semver"))
        .collect();
    assert!(
        parts.len() == 3 && (parts[0], parts[1]) >= (1, 1),
        "Grafana enables 1.1 features from {version}"
    );
    // Grafana reads /functions as text and replaces Infinity defaults before JSON.parse.
    let r = get(&router(), "/functions").await;
    let text = r.body.replace("1e9999", "1e308");
    let funcs: Value = serde_json::from_str(&text).expect("functions JSON");
    let mut editor_functions = 0;
    for (name, f) in funcs.as_object().expect("object keyed by name") {
        assert_eq!(f["name"].as_str(), Some(name.as_str()));
        let params = f["params"].as_array().expect("params");
        for p in params {
            assert!(
                p["name"].is_string() && p["type"].is_string(),
                "{name}: {p}"
            );
        }
        if f["group"] != "Graph" {
            editor_functions += 1;
        }
    }
    assert!(
        editor_functions >= 90,
        "only {editor_functions} functions offered in the editor"
    );
}

#[tokio::test]
async fn query_editor_and_template_variables() {
    let app = router();
    // Autocomplete: POST with the pattern unencoded in the body (spec §18.4).
    let r = post_form(
        &app,
        &format!("/metrics/find?from={}&until={NOW}", NOW - 21600),
        "query=test.*",
    )
    .await;
    let entries = r.json();
    let texts: Vec<&str> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["sparse", "web1", "web2"]);
    assert!(
        entries
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["expandable"] == 1)
    );
    let r = post_form(
        &app,
        "/metrics/find?from=-6h&until=now",
        "query=test.*web*.cpu.*",
    )
    .await;
    assert_eq!(r.json().as_array().unwrap().len(), 2);
    // Multi-value variables arrive as {a,b} globs.
    let r = post_form(
        &app,
        "/metrics/find?from=-6h&until=now",
        "query=test.{web1,web2}.*",
    )
    .await;
    assert_eq!(r.json()[0]["text"], "cpu");
    // expand(...) variables.
    let r = get(
        &app,
        "/metrics/expand?query=test.*.cpu.user&from=-6h&until=now",
    )
    .await;
    assert_eq!(
        r.json()["results"],
        serde_json::json!(["test.web1.cpu.user", "test.web2.cpu.user"])
    );
    // Tag autocomplete in the editor and tags()/tag_values() variables.
    let r = get(
        &app,
        "/tags/autoComplete/tags?expr=name%3Ddisk.used&tagPrefix=&limit=5000",
    )
    .await;
    assert_eq!(r.json(), serde_json::json!(["dc", "host"]));
    let r = get(
        &app,
        "/tags/autoComplete/values?expr=name%3Ddisk.used&tag=dc&valuePrefix=&limit=10000",
    )
    .await;
    assert_eq!(r.json(), serde_json::json!(["east", "west"]));
    let r = get(&app, "/tags/autoComplete/tags?limit=10000").await;
    assert!(r.json().as_array().unwrap().iter().all(Value::is_string));
}

#[tokio::test]
async fn panel_queries_with_refid_wrapping_and_max_data_points() {
    let a = r#"aliasSub(sumSeries(test.*.cpu.user), "(^.*$)", "\1 A")"#;
    let b = r#"aliasSub(aliasByNode(test.{web1,web2}.cpu.idle, 1), "(^.*$)", "\1 B")"#;
    let body = format!(
        "target={}&target={}&from=-6h&until=now&format=json&maxDataPoints=150",
        enc(a),
        enc(b)
    );
    let req = axum::http::Request::post("/render")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-dashboard-id", "7")
        .header("x-panel-id", "2")
        .header("x-grafana-org-id", "1")
        .body(axum::body::Body::from(body))
        .unwrap();
    let r = send(&router(), req).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let series = parse_like_grafana(&r.body);
    let refs: Vec<(&str, &str)> = series.iter().map(|s| split_ref(&s.0)).collect();
    assert_eq!(
        refs,
        [
            ("sumSeries(test.*.cpu.user)", "A"),
            ("web1", "B"),
            ("web2", "B")
        ]
    );
    for (_, points) in &series {
        assert!(
            points.len() <= 150 && points.len() >= 100,
            "{} points",
            points.len()
        );
        assert!(
            points
                .iter()
                .all(|p| p.1 > 1_000_000_000 && p.1 < 10_000_000_000),
            "seconds, not ms"
        );
    }
    // tags.name keeps the unaliased metric name.
    assert_eq!(r.json()[1]["tags"]["name"], "test.web1.cpu.idle");
    // Errors inside a wrapped query surface as a short non-2xx text.
    let bad = r#"aliasSub(nope(test.a), "(^.*$)", "\1 A")"#;
    let r = post_form(
        &router(),
        "/render",
        &format!("target={}&from=-6h&until=now&format=json", enc(bad)),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.len() < 200 && r.body.contains("unknown function: nope"));
}

#[tokio::test]
async fn grafana_time_translation_forms() {
    // translateTime: now-15m → -15min, now-2M → -2mon, absolute → epoch seconds ±1 s.
    let app = router();
    for (from, until) in [
        ("-15min", "now"),
        ("-2mon", "now"),
        ("-1w", "now"),
        (&*(NOW - 3601).to_string(), &*(NOW + 1).to_string()),
    ] {
        let r = post_form(
            &app,
            "/render",
            &format!(
                "target=test.web1.cpu.user&from={from}&until={until}&format=json&maxDataPoints=500"
            ),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{from}: {}", r.body);
        parse_like_grafana(&r.body);
    }
}

#[tokio::test]
async fn annotations_and_cors() {
    let app = router();
    let r = get(
        &app,
        "/events/get_data?from=-6h&until=now&tags=deploy%20web",
    )
    .await;
    assert_eq!(r.json(), serde_json::json!([]));
    // Target annotations are a normal render with maxDataPoints=100.
    let r = post_form(
        &app,
        "/render",
        "target=test.sparse.gauge&from=-1h&until=now&format=json&maxDataPoints=100",
    )
    .await;
    parse_like_grafana(&r.body);
    let req = axum::http::Request::builder()
        .method("OPTIONS")
        .uri("/metrics/find")
        .header("origin", "http://localhost:3000")
        .body(axum::body::Body::empty())
        .unwrap();
    let r = send(&app, req).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(r.headers.contains_key("access-control-allow-origin"));
}
