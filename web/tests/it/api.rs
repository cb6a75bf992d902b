//! The HTTP API driven in memory: formats, parameters, errors, finder, catalogue, tags, CORS.
//! Expected shapes and texts come from the spec's observations of graphite-web 1.1.10.

use axum::http::StatusCode;
use charcoal_web::Config;
use serde_json::json;

use crate::util::{NOW, enc, get, post_form, router, state_with};

fn points(v: &serde_json::Value) -> Vec<(Option<f64>, i64)> {
    v["datapoints"]
        .as_array()
        .expect("datapoints")
        .iter()
        .map(|p| (p[0].as_f64(), p[1].as_i64().expect("integer timestamp")))
        .collect()
}

#[tokio::test]
async fn render_json_series_with_whisper_boundaries() {
    let r = get(
        &router(),
        "/render?target=test.web1.cpu.user&from=-5min&until=now&format=json",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.content_type(), "application/json");
    let j = r.json();
    assert_eq!(j.as_array().unwrap().len(), 1);
    assert_eq!(j[0]["target"], "test.web1.cpu.user");
    assert_eq!(j[0]["tags"], json!({"name": "test.web1.cpu.user"}));
    // The first point is the first step boundary after `from`, the last the one at `until`.
    let expected: Vec<(Option<f64>, i64)> = (0..5)
        .map(|i| (Some(14.0 - i as f64), NOW - 240 + i * 60))
        .collect();
    assert_eq!(points(&j[0]), expected);
    assert_eq!(r.headers.get("cache-control").unwrap(), "no-cache");
}

#[tokio::test]
async fn render_targets_in_request_order_and_globs_sorted() {
    let r = get(
        &router(),
        "/render?target=test.web2.cpu.idle&target=test.*.cpu.user&from=-2min&format=json",
    )
    .await;
    let names: Vec<String> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["target"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        names,
        [
            "test.web2.cpu.idle",
            "test.web1.cpu.user",
            "test.web2.cpu.user"
        ]
    );
}

#[tokio::test]
async fn render_without_targets_or_matches_is_empty() {
    assert_eq!(get(&router(), "/render?format=json").await.body, "[]");
    assert_eq!(
        get(&router(), "/render?target=no.such.*&format=json")
            .await
            .body,
        "[]"
    );
    assert_eq!(
        get(&router(), "/render?target=%20&format=json").await.body,
        "[]"
    );
}

#[tokio::test]
async fn render_post_form_merges_with_query_and_target_brackets() {
    let app = router();
    let r = post_form(
        &app,
        "/render?format=json",
        "target=sumSeries(test.*.cpu.user)&from=-3min&until=now",
    )
    .await;
    let j = r.json();
    assert_eq!(j[0]["target"], "sumSeries(test.*.cpu.user)");
    assert_eq!(j[0]["tags"]["aggregatedBy"], "sum");
    assert_eq!(points(&j[0]).len(), 3);
    let r = get(
        &app,
        "/render?target[]=test.web1.cpu.user&from=-1min&format=json",
    )
    .await;
    assert_eq!(r.json()[0]["target"], "test.web1.cpu.user");
}

#[tokio::test]
async fn max_data_points_consolidates_and_aligns() {
    // Spec §4 observation: 1 day at 60 s with maxDataPoints=100 → 96 points 900 s apart,
    // aligned to multiples of 900.
    let r = get(
        &router(),
        "/render?target=test.web1.cpu.user&from=-1d&until=now&format=json&maxDataPoints=100",
    )
    .await;
    let p = points(&r.json()[0]);
    assert_eq!(p.len(), 96);
    assert!(p.iter().all(|(_, t)| t % 900 == 0));
    assert!(p.windows(2).all(|w| w[1].1 - w[0].1 == 900));
    // consolidateBy chooses the function: max of 15 values of 10 + (k % 7) is 16.
    let r = get(&router(), "/render?target=consolidateBy(test.web1.cpu.user,'max')&from=-1d&format=json&maxDataPoints=100").await;
    let p = points(&r.json()[0]);
    assert!(p[1..p.len() - 1].iter().all(|(v, _)| *v == Some(16.0)));
    let r = get(
        &router(),
        "/render?target=test.web1.cpu.user&from=-1h&format=json&maxDataPoints=1",
    )
    .await;
    assert_eq!(points(&r.json()[0]).len(), 1);
    // Non-digit values are ignored like graphite-web does.
    let r = get(
        &router(),
        "/render?target=test.web1.cpu.user&from=-1h&format=json&maxDataPoints=abc",
    )
    .await;
    assert_eq!(points(&r.json()[0]).len(), 60);
}

#[tokio::test]
async fn no_null_points_drops_nulls_and_empty_series() {
    let r = get(
        &router(),
        "/render?target=test.sparse.gauge&from=-9min&format=json&noNullPoints",
    )
    .await;
    let p = points(&r.json()[0]);
    assert!(p.iter().all(|(v, _)| v.is_some()));
    assert_eq!(p.len(), 3);
    let r = get(
        &router(),
        "/render?target=removeAboveValue(test.sparse.gauge,-1)&from=-9min&format=json&noNullPoints",
    )
    .await;
    assert_eq!(r.body, "[]");
}

/// `format=json&styles=1` (Charcoal's extension for its browser chart): a `style` object per
/// series with what the style functions set; without the parameter nothing changes.
#[tokio::test]
async fn json_styles_opt_in() {
    let app = router();
    let targets = [
        "color(test.web1.cpu.user,'red')",
        "lineWidth(dashed(test.web2.cpu.user),3)",
        "alpha(color(test.web1.cpu.user,'00ff0080'),0.5)",
        "stacked(test.web1.cpu.idle)",
        "stacked(test.web2.cpu.idle)",
        "stacked(test.web2.cpu.user,'other')",
        "secondYAxis(test.sparse.gauge)",
        "areaBetween(test.web*.cpu.user)",
        "drawAsInfinite(test.web1.cpu.user)",
        "color(test.web2.cpu.idle,'nocolour')",
        "test.web1.cpu.user",
    ];
    let query: String = targets
        .iter()
        .map(|t| format!("target={}&", enc(t)))
        .collect();
    let url = format!("/render?{query}from=-3min&format=json");
    let plain = get(&app, &url).await;
    assert_eq!(plain.status, StatusCode::OK);
    assert!(!plain.body.contains("style"), "{}", plain.body);
    for off in ["&styles=0", "&styles=", "&styles=yes"] {
        assert_eq!(
            get(&app, &format!("{url}{off}")).await.body,
            plain.body,
            "{off}"
        );
    }

    let styled = get(&app, &format!("{url}&styles=1")).await;
    assert_eq!(styled.status, StatusCode::OK);
    let j = styled.json();
    let list = j.as_array().expect("array");
    assert_eq!(list.len(), 12);
    for s in list {
        let keys: Vec<&str> = s
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["target", "tags", "datapoints", "style"]);
    }
    let styles: Vec<&serde_json::Value> = list.iter().map(|s| &s["style"]).collect();
    assert_eq!(styles[0], &json!({"color": "#c80032"}));
    assert_eq!(styles[1], &json!({"lineWidth": 3.0, "dashed": 5.0}));
    assert_eq!(styles[2], &json!({"color": "#00ff0080", "alpha": 0.5}));
    assert_eq!(styles[3], &json!({"stack": "__DEFAULT__", "area": true}));
    assert_eq!(styles[4], &json!({"stack": "__DEFAULT__", "area": true}));
    assert_eq!(styles[5], &json!({"stack": "other", "area": true}));
    assert_eq!(styles[6], &json!({"secondYAxis": true}));
    assert_eq!(styles[7], &json!({"area": true, "invisible": true}));
    assert_eq!(styles[8], &json!({"area": true}));
    assert_eq!(styles[9], &json!({"drawAsInfinite": true}));
    // A colour the PNG renderer would refuse is left out: the chart picks from its palette.
    assert_eq!(styles[10], &json!({}));
    assert_eq!(styles[11], &json!({}));
    // The values are the same as without styles: stacked() totals run across targets.
    let idle1 = points(&list[3]);
    let idle2 = points(&list[4]);
    let user2 = points(
        &get(
            &app,
            "/render?target=test.web2.cpu.user&from=-3min&format=json",
        )
        .await
        .json()[0],
    );
    let raw2 = points(
        &get(
            &app,
            "/render?target=test.web2.cpu.idle&from=-3min&format=json",
        )
        .await
        .json()[0],
    );
    for i in 0..idle1.len() {
        let total = idle1[i].0.zip(raw2[i].0).map(|(a, b)| a + b);
        assert_eq!(idle2[i].0, total, "point {i}");
    }
    assert_eq!(points(&list[5]), user2, "a stack of its own starts at zero");
    let mut stripped = j.clone();
    for s in stripped.as_array_mut().expect("array") {
        s.as_object_mut().expect("object").remove("style");
    }
    assert_eq!(stripped, plain.json());

    let pretty = get(&app, &format!("{url}&styles=1&pretty=1")).await;
    assert!(pretty.body.contains("\n  "));
    assert_eq!(pretty.json(), j);
}

#[tokio::test]
async fn csv_raw_jsonp_and_pretty() {
    let app = router();
    let r = get(
        &app,
        "/render?target=test.web1.cpu.user&from=-2min&format=csv",
    )
    .await;
    assert_eq!(r.content_type(), "text/csv");
    assert_eq!(
        r.body,
        "test.web1.cpu.user,2023-11-14 22:59:00,11.0\r\ntest.web1.cpu.user,2023-11-14 23:00:00,10.0\r\n"
    );
    let r = get(
        &app,
        "/render?target=test.sparse.gauge&from=-2min&format=raw",
    )
    .await;
    assert_eq!(r.content_type(), "text/plain");
    assert_eq!(
        r.body,
        format!("test.sparse.gauge,{},{},60|None,0.0\n", NOW - 60, NOW + 60)
    );
    let r = get(
        &app,
        "/render?target=test.web1.cpu.user&from=-1min&format=json&jsonp=cb",
    )
    .await;
    assert_eq!(r.content_type(), "text/javascript");
    assert!(r.body.starts_with("cb([{") && r.body.ends_with("])"));
    let r = get(
        &app,
        "/render?target=test.web1.cpu.user&from=-1min&format=json&pretty=1",
    )
    .await;
    assert!(r.body.contains("\n  "));
    let r = get(
        &app,
        "/render?target=test.web1.cpu.user&from=-1min&format=csv&tz=America/New_York",
    )
    .await;
    assert!(r.body.contains("2023-11-14 18:00:00"), "{}", r.body);
    let r = get(
        &app,
        "/render?target=test.web1.cpu.user&from=-1min&format=rickshaw",
    )
    .await;
    assert_eq!(r.json()[0]["datapoints"][0], json!({"x": NOW, "y": 10.0}));
}

#[tokio::test]
async fn time_specs_in_every_form() {
    let app = router();
    for (from, until, n) in [
        ("-10min", "now", 10),
        ("-1h", "-30min", 30),
        (&*(NOW - 600).to_string(), &*NOW.to_string(), 10),
        ("22:00_20231114", "23:00_20231114", 60),
        ("now-2min", "now", 2),
        ("20231114", "23:00_20231114", 23 * 60),
    ] {
        let r = get(
            &app,
            &format!("/render?target=test.web1.cpu.user&from={from}&until={until}&format=json"),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{from} {until}: {}", r.body);
        assert_eq!(points(&r.json()[0]).len(), n, "{from} {until}");
    }
    // from > until is swapped.
    let r = get(
        &app,
        "/render?target=test.web1.cpu.user&from=now&until=-2min&format=json",
    )
    .await;
    assert_eq!(points(&r.json()[0]).len(), 2);
}

#[tokio::test]
async fn client_errors_are_400_with_short_text() {
    let app = router();
    let r = get(&app, "/render?target=foo(test.web1.cpu.user)&format=json").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body
            .contains("Received request for unknown function: foo"),
        "{}",
        r.body
    );
    assert!(r.content_type().starts_with("text/plain"));
    let r = get(
        &app,
        &format!("/render?target={}&format=json", enc("sumSeries(a.b")),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.body.trim(),
        "target 1: syntax error at offset 13: expected ',' or ')', found end of target"
    );
    let r = get(
        &app,
        &format!(
            "/render?target=a.b&target={}&format=json",
            enc("alias(a.b,)")
        ),
    )
    .await;
    assert!(
        r.body.starts_with("target 2: syntax error at offset 10"),
        "{}",
        r.body
    );
    let r = get(&app, "/render?target=a.b&from=foo&format=json").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.body.trim(),
        "Invalid parameters (Unknown day reference: foo)"
    );
    let r = get(&app, "/render?target=a.b&from=now&until=now&format=json").await;
    assert_eq!(
        r.body.trim(),
        "Invalid parameters (Invalid empty time range)"
    );
    let r = get(&app, "/render?target=a.b&from=-5m&format=json").await;
    assert!(r.body.contains("use 'min' for minutes"), "{}", r.body);
    let r = get(
        &app,
        "/render?target=scale(test.web1.cpu.user,'x')&format=json",
    )
    .await;
    assert_eq!(
        r.body.trim(),
        "scale(): parameter factor expects a number, got 'x'"
    );
    let r = get(
        &app,
        "/render?target=divideSeries(test.web1.cpu.user,test.*.cpu.*)&format=json",
    )
    .await;
    assert!(
        r.body
            .contains("divideSeries second argument must reference exactly 1 series (got 4)"),
        "{}",
        r.body
    );
    let r = get(&app, "/render?target=a.b&graphType=bar&format=json").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn unsupported_formats_are_refused_clearly() {
    // PNG and SVG are covered in graph.rs; pickle (never unpickled or produced, spec §3.6)
    // and PDF are refused.
    for f in ["pickle", "pdf"] {
        let r = get(
            &router(),
            &format!("/render?target=test.web1.cpu.user&format={f}"),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{f}");
        assert!(r.body.contains(f), "{f}: {}", r.body);
    }
}

#[tokio::test]
async fn pickle_is_refused_everywhere() {
    let app = router();
    let r = get(&app, "/render?target=test.web1.cpu.user&pickle=1").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("pickle"), "{}", r.body);
    let r = get(&app, "/metrics/find/?query=test.*&format=pickle&local=1").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("pickle"), "{}", r.body);
}

fn msgpack_value(r: &crate::util::Reply) -> serde_json::Value {
    rmp_serde::from_slice(&r.bytes).unwrap_or_else(|e| panic!("not msgpack ({e}): {:?}", r.bytes))
}

#[tokio::test]
async fn render_dygraph_rows_nulls_jsonp_and_empty() {
    let app = router();
    let r = get(
        &app,
        "/render?target=test.web1.cpu.user&target=test.sparse.gauge&from=-3min&format=dygraph",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.content_type(), "application/json");
    // Timestamps in ms from the first series; sparse.gauge is null off every third minute.
    let t0 = (NOW - 120) * 1000;
    assert_eq!(
        r.body,
        format!(
            r#"{{"labels" : ["Time", "test.web1.cpu.user", "test.sparse.gauge"], "data" : [[{t0}, 12.0, null], [{}, 11.0, null], [{}, 10.0, 0.0]]}}"#,
            t0 + 60_000,
            t0 + 120_000
        )
    );
    let j = r.json();
    assert_eq!(j["labels"][0], "Time");
    let r = get(
        &app,
        "/render?target=test.web1.cpu.user&from=-1min&format=dygraph&jsonp=cb",
    )
    .await;
    assert_eq!(r.content_type(), "text/javascript");
    assert_eq!(
        r.body,
        format!(
            r#"cb({{"labels" : ["Time", "test.web1.cpu.user"], "data" : [[{}, 10.0]]}})"#,
            NOW * 1000
        )
    );
    for q in ["format=dygraph", "target=no.such.*&format=dygraph"] {
        assert_eq!(get(&app, &format!("/render?{q}")).await.body, "{}");
    }
    let r = get(&app, "/render?target=no.such&format=dygraph&jsonp=cb").await;
    assert_eq!(r.body, "cb({})");
}

#[tokio::test]
async fn render_rickshaw_exact_text_jsonp_pretty_and_empty() {
    let app = router();
    let r = get(
        &app,
        "/render?target=test.sparse.gauge&from=-3min&format=rickshaw",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.content_type(), "application/json");
    assert_eq!(
        r.body,
        format!(
            r#"[{{"target": "test.sparse.gauge", "datapoints": [{{"x": {}, "y": null}}, {{"x": {}, "y": null}}, {{"x": {NOW}, "y": 0.0}}]}}]"#,
            NOW - 120,
            NOW - 60
        )
    );
    let r = get(
        &app,
        "/render?target=test.web1.cpu.user&from=-1min&format=rickshaw&jsonp=cb",
    )
    .await;
    assert_eq!(r.content_type(), "text/javascript");
    assert_eq!(
        r.body,
        format!(
            r#"cb([{{"target": "test.web1.cpu.user", "datapoints": [{{"x": {NOW}, "y": 10.0}}]}}])"#
        )
    );
    let r = get(
        &app,
        "/render?target=test.web1.cpu.user&from=-1min&format=rickshaw&pretty=1",
    )
    .await;
    assert!(r.body.starts_with("[\n  {\n    \"target\": "), "{}", r.body);
    assert_eq!(r.json()[0]["datapoints"][0]["y"], 10.0);
    assert_eq!(
        get(&app, "/render?target=no.such.*&format=rickshaw")
            .await
            .body,
        "[]"
    );
}

#[tokio::test]
async fn render_msgpack_is_graphite_series_info() {
    let app = router();
    let r = get(
        &app,
        "/render/?target=test.web*.cpu.user&target=test.sparse.gauge&from=-3min&format=msgpack&local=1&noCache=1",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    // Exactly this type: graphite-web unpickles anything else.
    assert_eq!(r.content_type(), "application/x-msgpack");
    let v = msgpack_value(&r);
    let list = v.as_array().expect("list");
    assert_eq!(list.len(), 3);
    assert_eq!(
        list[0],
        json!({
            "name": "test.web1.cpu.user", "start": NOW - 120, "end": NOW + 60, "step": 60,
            "values": [12.0, 11.0, 10.0], "pathExpression": "test.web*.cpu.user",
            "valuesPerPoint": 1, "consolidationFunc": "average", "xFilesFactor": 0.0
        })
    );
    assert_eq!(list[1]["name"], "test.web2.cpu.user");
    assert_eq!(list[2]["pathExpression"], "test.sparse.gauge");
    assert_eq!(list[2]["values"], json!([null, null, 0.0]));
    // Functions keep graphite-web's naming; jsonp is not a msgpack option.
    let r = get(
        &app,
        "/render?target=sumSeries(test.web*.cpu.user)&from=-1min&format=msgpack&jsonp=cb",
    )
    .await;
    assert_eq!(r.content_type(), "application/x-msgpack");
    let v = msgpack_value(&r);
    assert_eq!(v[0]["name"], "sumSeries(test.web*.cpu.user)");
    assert_eq!(v[0]["values"], json!([30.0]));
    let r = get(&app, "/render?target=no.such.*&format=msgpack").await;
    assert_eq!(r.bytes, [0x90]);
}

#[tokio::test]
async fn find_msgpack_is_graphite_node_list() {
    // What graphite-web's RemoteFinder sends: GET /metrics/find/ with local, format, query
    // and from/until as integers.
    let app = router();
    let r = get(
        &app,
        &format!(
            "/metrics/find/?local=1&format=msgpack&query=test.web1.cpu.*&from={}&until={NOW}",
            NOW - 3600
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.content_type(), "application/x-msgpack");
    assert_eq!(
        msgpack_value(&r),
        json!([
            {"path": "test.web1.cpu.idle", "is_leaf": true},
            {"path": "test.web1.cpu.user", "is_leaf": true}
        ])
    );
    // REMOTE_STORE_USE_POST sends the same fields as a form.
    let r = post_form(
        &app,
        "/metrics/find/",
        "local=1&format=msgpack&query=test.*",
    )
    .await;
    assert_eq!(
        msgpack_value(&r),
        json!([
            {"path": "test.sparse", "is_leaf": false},
            {"path": "test.web1", "is_leaf": false},
            {"path": "test.web2", "is_leaf": false}
        ])
    );
    let r = get(&app, "/metrics/find/?format=msgpack&query=no.such.*").await;
    assert_eq!(r.bytes, [0x90]);
}

#[tokio::test]
async fn limits_give_clear_errors() {
    let app = axum_app(Config {
        max_series: 2,
        ..Config::default()
    });
    let r = get(&app, "/render?target=test.*.cpu.*&format=json").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.body.trim(),
        "too many series matched by 'test.*.cpu.*' (4 > 2)"
    );
    let app = axum_app(Config {
        max_points: 100,
        ..Config::default()
    });
    let r = get(
        &app,
        "/render?target=test.web1.cpu.user&from=-1d&format=json",
    )
    .await;
    assert!(r.body.starts_with("too many points fetched"), "{}", r.body);
    let app = axum_app(Config {
        max_target_len: 10,
        ..Config::default()
    });
    let r = get(&app, "/render?target=test.web1.cpu.user&format=json").await;
    assert!(r.body.contains("too long"), "{}", r.body);
    let app = axum_app(Config {
        max_depth: 2,
        ..Config::default()
    });
    let r = get(
        &app,
        "/render?target=absolute(absolute(absolute(test.web1.cpu.user)))&format=json",
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let app = axum_app(Config {
        max_eval_time: std::time::Duration::from_nanos(1),
        ..Config::default()
    });
    let r = get(&app, "/render?target=test.*.cpu.*&format=json").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.headers.contains_key("retry-after"));
}

fn axum_app(config: Config) -> axum::Router {
    charcoal_web::app(state_with(config))
}

#[tokio::test]
async fn find_treejson_completer_nodelist() {
    let app = router();
    let r = get(&app, "/metrics/find?query=test.*").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers.get("pragma").unwrap(), "no-cache");
    assert_eq!(
        r.json(),
        json!([
            {"text": "sparse", "id": "test.sparse", "allowChildren": 1, "expandable": 1, "leaf": 0},
            {"text": "web1", "id": "test.web1", "allowChildren": 1, "expandable": 1, "leaf": 0},
            {"text": "web2", "id": "test.web2", "allowChildren": 1, "expandable": 1, "leaf": 0}
        ])
    );
    // Equal names collapse into one entry whose id keeps the wildcard (spec §13 observation).
    let r = get(&app, "/metrics/find?query=test.web*.cpu").await;
    assert_eq!(
        r.json(),
        json!([{"text": "cpu", "id": "test.web*.cpu", "allowChildren": 1, "expandable": 1, "leaf": 0}])
    );
    let r = get(&app, "/metrics/find?query=test.web1.cpu.*&wildcards=1").await;
    let j = r.json();
    assert_eq!(
        j[0],
        json!({"text": "*", "id": "test.web1.cpu.*", "allowChildren": 0, "expandable": 0, "leaf": 1})
    );
    assert_eq!(j[1]["text"], "idle");
    let r = get(&app, "/metrics/find?query=test.web1.cpu.u&format=completer").await;
    assert_eq!(
        r.json(),
        json!({"metrics": [{"path": "test.web1.cpu.user", "name": "user", "is_leaf": "1"}]})
    );
    let r = get(&app, "/metrics/find?query=test.web*&format=completer").await;
    assert_eq!(
        r.json()["metrics"][0],
        json!({"path": "test.web1.", "name": "web1", "is_leaf": "0"})
    );
    let r = get(
        &app,
        "/metrics/find?query=test.*.cpu.*&format=nodelist&position=1",
    )
    .await;
    assert_eq!(r.json(), json!({"nodes": ["web1", "web2"]}));
    let r = post_form(
        &app,
        "/metrics/find?from=-6h&until=now",
        "query=test.{web1,web2}.cpu.*",
    )
    .await;
    assert_eq!(r.json().as_array().unwrap().len(), 2);
    let r = get(&app, "/metrics/find?query=*").await;
    let texts: Vec<String> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(texts, ["test"]);
}

#[tokio::test]
async fn find_errors() {
    let app = router();
    let r = get(&app, "/metrics/find").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.body.trim(),
        "Invalid parameters (Missing required parameter 'query')"
    );
    let r = get(&app, "/metrics/find?query=a&format=bogus").await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (
            StatusCode::BAD_REQUEST,
            "Invalid value for 'format' parameter"
        )
    );
    let r = get(&app, "/metrics/find?query=a&from=junk").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let app = axum_app(Config {
        max_find_results: 1,
        ..Config::default()
    });
    let r = get(&app, "/metrics/find?query=test.*").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn expand_and_index() {
    let app = router();
    let r = get(&app, "/metrics/expand?query=test.web*.cpu.u*&leavesOnly=1").await;
    assert_eq!(
        r.json(),
        json!({"results": ["test.web1.cpu.user", "test.web2.cpu.user"]})
    );
    let r = get(
        &app,
        "/metrics/expand?query=test.web1.*&query=test.web2.*&groupByExpr=1",
    )
    .await;
    assert_eq!(
        r.json(),
        json!({"results": {"test.web1.*": ["test.web1.cpu"], "test.web2.*": ["test.web2.cpu"]}})
    );
    let r = get(&app, "/metrics/index.json").await;
    let all = r.json();
    assert_eq!(all.as_array().unwrap().len(), 8);
    assert_eq!(all[0], "disk.used;dc=east;host=db1");
    assert!(
        all.as_array()
            .unwrap()
            .contains(&json!("test.web2.cpu.idle"))
    );
}

#[tokio::test]
async fn functions_catalogue() {
    let app = router();
    let r = get(&app, "/functions").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(!r.body.contains("Infinity") && !r.body.contains("NaN"));
    assert!(
        r.body.contains(r#""default":1e9999"#),
        "infinite defaults are written as 1e9999"
    );
    let j: serde_json::Value = serde_json::from_str(&r.body.replace("1e9999", "null")).unwrap();
    let obj = j.as_object().unwrap();
    assert!(obj.len() >= 100);
    for (name, f) in obj {
        assert_eq!(f["name"], json!(name));
        assert!(f["group"].is_string() && f["params"].is_array() && f["description"].is_string());
    }
    let r = get(&app, "/functions?grouped=1&group=Alias").await;
    let j = r.json();
    assert_eq!(j.as_object().unwrap().keys().collect::<Vec<_>>(), ["Alias"]);
    let r = get(&app, "/functions/movingAverage").await;
    assert_eq!(r.json()["params"][1]["type"], "intOrInterval");
    let r = get(&app, "/functions/nope").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json(), json!({"error": "Function not found: nope"}));
    let r = post_form(&app, "/functions", "").await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn version_and_events() {
    let r = get(&router(), "/version").await;
    assert_eq!(r.body, "1.1.10\n");
    let r = get(&router(), "/events/get_data?from=-6h&until=now&tags=deploy").await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "[]"));
}

#[tokio::test]
async fn tag_endpoints() {
    let app = router();
    // Spec §16 observations, with this fixture's tags.
    let r = get(&app, "/tags").await;
    assert_eq!(
        r.json(),
        json!([{"id": 1, "tag": "dc"}, {"id": 2, "tag": "host"}, {"id": 3, "tag": "name"}])
    );
    let r = get(&app, "/tags/dc").await;
    assert_eq!(
        r.json(),
        json!({"id": 1, "tag": "dc", "values": [{"id": 1, "value": "east", "count": 2}, {"id": 2, "value": "west", "count": 1}]})
    );
    assert_eq!(get(&app, "/tags/nope").await.body, "null");
    let r = get(&app, "/tags/findSeries?expr=dc=east").await;
    assert_eq!(
        r.json(),
        json!(["disk.used;dc=east;host=db1", "disk.used;dc=east;host=web1"])
    );
    let r = get(&app, "/tags/findSeries").await;
    assert_eq!(
        (r.status, r.json()),
        (
            StatusCode::BAD_REQUEST,
            json!({"error": "no tag expressions specified"})
        )
    );
    assert_eq!(
        get(&app, "/tags/autoComplete/tags?expr=dc=east")
            .await
            .json(),
        json!(["host", "name"])
    );
    assert_eq!(
        get(&app, "/tags/autoComplete/tags?expr=dc=east&tagPrefix=h")
            .await
            .json(),
        json!(["host"])
    );
    assert_eq!(
        get(&app, "/tags/autoComplete/tags").await.json(),
        json!(["dc", "host", "name"])
    );
    assert_eq!(
        get(&app, "/tags/autoComplete/tags?limit=1").await.json(),
        json!(["dc"])
    );
    assert_eq!(
        get(&app, "/tags/autoComplete/values?tag=host").await.json(),
        json!(["db1", "web1", "web2"])
    );
    assert_eq!(
        get(&app, "/tags/autoComplete/values?tag=host&expr=dc=east")
            .await
            .json(),
        json!(["db1", "web1"])
    );
    assert_eq!(
        get(&app, "/tags/autoComplete/values?tag=host&valuePrefix=w")
            .await
            .json(),
        json!(["web1", "web2"])
    );
    let r = get(&app, "/tags/autoComplete/values").await;
    assert_eq!(
        (r.status, r.json()),
        (
            StatusCode::BAD_REQUEST,
            json!({"error": "no tag specified"})
        )
    );
    let r = post_form(&app, "/tags/tagSeries", "path=disk.used;host=a;dc=b").await;
    assert_eq!(r.json(), json!("disk.used;dc=b;host=a"));
    let r = get(
        &app,
        &format!(
            "/render?target={}&from=-1min&format=json",
            enc("seriesByTag('name=disk.used','dc=west')")
        ),
    )
    .await;
    let j = r.json();
    assert_eq!(j[0]["target"], "disk.used;dc=west;host=web2");
    assert_eq!(
        j[0]["tags"],
        json!({"dc": "west", "host": "web2", "name": "disk.used"})
    );
}

#[tokio::test]
async fn cors_preflight_and_headers() {
    let app = router();
    let req = axum::http::Request::builder()
        .method("OPTIONS")
        .uri("/render")
        .header("origin", "http://grafana.local")
        .header("access-control-request-method", "POST")
        .body(axum::body::Body::empty())
        .unwrap();
    let r = crate::util::send(&app, req).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(r.headers["access-control-allow-origin"], "*");
    assert_eq!(
        r.headers["access-control-allow-methods"],
        "GET, POST, OPTIONS"
    );
    assert!(
        r.headers["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("X-Grafana-Org-Id")
    );
    assert_eq!(r.headers["access-control-max-age"], "600");
    let r = get(&app, "/version").await;
    assert_eq!(r.headers["access-control-allow-origin"], "*");
    // A configured origin is echoed with credentials allowed.
    let app = axum_app(Config {
        cors_origins: vec!["http://grafana.local".into()],
        ..Config::default()
    });
    let req = axum::http::Request::get("/version")
        .header("origin", "http://grafana.local")
        .body(axum::body::Body::empty())
        .unwrap();
    let r = crate::util::send(&app, req).await;
    assert_eq!(
        r.headers["access-control-allow-origin"],
        "http://grafana.local"
    );
    assert_eq!(r.headers["access-control-allow-credentials"], "true");
    let req = axum::http::Request::get("/version")
        .header("origin", "http://evil.example")
        .body(axum::body::Body::empty())
        .unwrap();
    assert!(
        !crate::util::send(&app, req)
            .await
            .headers
            .contains_key("access-control-allow-origin")
    );
}

#[tokio::test]
async fn gzip_when_asked() {
    let req = axum::http::Request::get("/render?target=test.*.cpu.*&from=-1d&format=json")
        .header("accept-encoding", "gzip")
        .body(axum::body::Body::empty())
        .unwrap();
    let resp = tower::ServiceExt::oneshot(router(), req).await.unwrap();
    assert_eq!(resp.headers()["content-encoding"], "gzip");
}
