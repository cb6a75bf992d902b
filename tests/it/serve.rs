//! `charcoal serve`: everything in one process on free ports; StatsD and Carbon traffic shows
//! up in /render; SIGTERM keeps it; a restart on the same data directory serves it again,
//! events posted for Grafana's annotations included.

use std::io::Write;
use std::net::{TcpStream, UdpSocket};
use std::time::Duration;

use crate::support::{Server, address, http_get, http_post, path_str};

struct Stack {
    server: Server,
    web: String,
    statsd: String,
    carbon: String,
}

fn start(data: &std::path::Path) -> Stack {
    let server = Server::start(
        &[
            "serve",
            "--data-dir",
            path_str(data),
            "--statsd-listen",
            "127.0.0.1:0",
            "--statsd-admin-listen",
            "127.0.0.1:0",
            "--carbon-listen",
            "127.0.0.1:0",
            "--web-listen",
            "127.0.0.1:0",
            "--munin-listen",
            "",
            "--flush-interval",
            "1s",
        ],
        &[
            ("CHARCOAL_STORE__DEFAULT_RETENTION", "1s:10m,10s:1d"),
            ("CHARCOAL_OPS__SELF_METRICS_INTERVAL", "1s"),
            ("CHARCOAL_OPS__SELF_METRICS_PREFIX", "charcoal.testhost"),
        ],
    );
    let web = address(&server.wait_for("web API listening"), "local_addr");
    let statsd = address(&server.wait_for("statsd listening"), "udp");
    let carbon = address(&server.wait_for("carbon receiver listening"), "tcp");
    Stack {
        server,
        web,
        statsd,
        carbon,
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Sum of the non-null values of a render target over the last `span`.
fn rendered_sum(web: &str, target: &str, span: &str) -> Option<f64> {
    let (status, body) = http_get(
        web,
        &format!("/render?target={target}&from=-{span}&format=json"),
    );
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    let points = json.get(0)?["datapoints"].as_array()?.clone();
    let values: Vec<f64> = points.iter().filter_map(|p| p[0].as_f64()).collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

fn wait_for_sum(web: &str, target: &str, expected: f64) {
    for _ in 0..300 {
        if rendered_sum(web, target, "10min") == Some(expected) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "{target}: expected sum {expected}, got {:?}",
        rendered_sum(web, target, "10min")
    );
}

#[test]
fn statsd_and_carbon_traffic_is_graphable_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let stack = start(&data);
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..10 {
        udp.send_to(b"serve.hits:1|c\nserve.latency:20|ms", &stack.statsd)
            .unwrap();
    }
    let mut tcp = TcpStream::connect(&stack.carbon).unwrap();
    let t = now();
    writeln!(tcp, "serve.carbon 7 {}\nserve.carbon 8 {}", t - 5, t - 4).unwrap();
    drop(tcp);
    // StatsD's counts land within a flush; Carbon's points at once.
    wait_for_sum(&stack.web, "stats_counts.serve.hits", 10.0);
    wait_for_sum(&stack.web, "serve.carbon", 15.0);
    wait_for_sum(&stack.web, "stats.timers.serve.latency.count", 10.0);
    // Operations endpoints and our own metrics, in Prometheus format and in the store.
    assert_eq!(http_get(&stack.web, "/health"), (200, "ok\n".to_owned()));
    assert_eq!(http_get(&stack.web, "/ready"), (200, "ready\n".to_owned()));
    let (status, text) = http_get(&stack.web, "/metrics");
    assert_eq!(status, 200);
    assert!(text.contains("charcoal_statsd_lines_total 20"), "{text}");
    assert!(
        text.contains("# TYPE charcoal_store_cache_size gauge"),
        "{text}"
    );
    let (status, find) = http_get(&stack.web, "/metrics?query=stats_counts.serve.*");
    assert_eq!(status, 200, "graphite's /metrics alias of find still works");
    assert!(find.contains("\"hits\""), "{find}");
    for _ in 0..200 {
        if rendered_sum(
            &stack.web,
            "charcoal.testhost.carbon.metrics_received",
            "1min",
        )
        .is_some()
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        rendered_sum(
            &stack.web,
            "charcoal.testhost.carbon.metrics_received",
            "1min"
        )
        .is_some(),
        "self metrics are stored"
    );
    // An event for Grafana's annotations lands in the data directory's events file.
    let (status, body) = http_post(
        &stack.web,
        "/events/",
        r#"{"what": "deploy v1", "tags": ["deploy", "web"], "data": "serve test"}"#,
    );
    assert_eq!((status, body.as_str()), (200, ""));
    assert!(data.join("events.jsonl").is_file());
    stack.server.signal(libc::SIGTERM);
    assert!(stack.server.wait().success());

    let again = start(&data);
    let (status, body) = http_get(&again.web, "/events/get_data?tags=deploy");
    assert_eq!(status, 200, "{body}");
    let events: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(events[0]["what"], "deploy v1", "{body}");
    assert_eq!(events[0]["tags"], serde_json::json!(["deploy", "web"]));
    assert_eq!(events[0]["id"], 1);
    // The file is not a metric.
    let (_, roots) = http_get(&again.web, "/metrics/find?query=*");
    assert!(!roots.contains("events"), "{roots}");
    assert_eq!(
        rendered_sum(&again.web, "serve.carbon", "10min"),
        Some(15.0)
    );
    assert_eq!(
        rendered_sum(&again.web, "stats_counts.serve.hits", "10min"),
        Some(10.0)
    );
    let (status, body) = http_get(&again.web, "/metrics/find?query=serve.*");
    assert_eq!(status, 200);
    assert!(body.contains("\"carbon\""), "{body}");
    again.server.signal(libc::SIGTERM);
    assert!(again.server.wait().success());
}
