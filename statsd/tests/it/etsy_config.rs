//! `--etsy-config`: real files.

use std::time::Duration;

use charcoal_statsd::{Bin, ListenKind, parse_etsy_config};

#[test]
fn operator_style_file() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/etsy-config.js"
    ))
    .unwrap();
    let e = parse_etsy_config(&text).unwrap();
    assert_eq!(e.listen[0].kind, ListenKind::Udp);
    assert_eq!(e.listen[0].address(), "127.0.0.1:8125");
    assert_eq!(e.admin, "127.0.0.1:8126");
    assert_eq!(e.graphite.as_deref(), Some("127.0.0.1:2003"));
    let c = &e.statsd;
    assert_eq!(c.flush_interval, Duration::from_secs(10));
    assert_eq!(c.percent_threshold, vec![90.0, 95.0, 99.0]);
    assert!(c.delete_idle_stats);
    assert_eq!(c.delete_gauges, Some(false));
    assert!(!c.legacy_namespace);
    assert_eq!(c.global_suffix.as_deref(), Some("web01"));
    assert_eq!(c.histogram[0].bins.last(), Some(&Bin::Text("inf".into())));
    assert_eq!(e.unsupported, vec!["log"]);
}

/// The example config shipped in the npm package (CHARCOAL_INTEROP=1).
#[test]
fn etsy_example_config_from_npm() {
    if std::env::var_os("CHARCOAL_INTEROP").is_none() {
        return;
    }
    let path = crate::interop::node_dir().join("node_modules/statsd/exampleConfig.js");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run .ci/setup-statsd.sh)", path.display()));
    let e = parse_etsy_config(&text).unwrap();
    assert_eq!(e.graphite.as_deref(), Some("graphite.example.com:2003"));
    assert_eq!(e.listen[0].port, 8125);
    assert!(e.unsupported.is_empty(), "{:?}", e.unsupported);
}
