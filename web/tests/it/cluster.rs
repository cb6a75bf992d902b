//! `cluster_servers`: a front end reading several in-process nodes over real HTTP finds and
//! graphs the union, evaluates functions over the merged set, merges copies of one series,
//! answers `local=1` from its own data only, and gives partial results (200) when a peer is
//! down or hangs.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use charcoal_web::{
    AppState, ClusterSource, Config, MemorySource, MetricSource, WebServer, serve, source_for,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Fixed clock of every node; points sit at `T0`, `T0+60`, `T0+120`.
const NOW: i64 = 1_700_003_600;
const T0: i64 = 1_700_000_040;
/// A window that holds exactly the three points.
const WINDOW: &str = "from=1699999980&until=1700000160";

/// A node's data: `(name, [value at T0, T0+60, T0+120])`, `None` leaves a slot empty.
fn memory(metrics: &[(&str, [Option<f64>; 3])]) -> Arc<MemorySource> {
    let source = Arc::new(MemorySource::new());
    for (name, values) in metrics {
        let points = values
            .iter()
            .enumerate()
            .filter_map(|(k, v)| v.map(|v| (T0 + 60 * k as i64, v)));
        source.insert(name, 60, points);
    }
    source
}

/// Peers in-process answer in milliseconds; the generous timeout only keeps a loaded test
/// machine from looking like a down peer.
fn cluster_config(peers: &[SocketAddr]) -> Config {
    Config {
        cluster_servers: peers.iter().map(|a| format!("http://{a}")).collect(),
        cluster_find_timeout: Duration::from_secs(10),
        cluster_fetch_timeout: Duration::from_secs(10),
        ..Config::default()
    }
}

/// A node serving `source` on an already bound listener, with the fixed clock.
fn start(listener: TcpListener, source: Arc<dyn MetricSource>, config: Config) -> Node {
    let token = CancellationToken::new();
    let state = AppState::with_clock(source, config, || NOW).expect("valid config");
    let server = serve(listener, state, token).expect("serve");
    Node { server }
}

struct Node {
    server: WebServer,
}

impl Node {
    fn addr(&self) -> SocketAddr {
        self.server.local_addr()
    }
}

async fn bind() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.unwrap()
}

/// A plain node (no peers) over `metrics`.
async fn plain(metrics: &[(&str, [Option<f64>; 3])]) -> Node {
    start(bind().await, memory(metrics), Config::default())
}

/// A front end over its own `metrics` and the peers; also returns the cluster source for its
/// counters.
async fn front(
    metrics: &[(&str, [Option<f64>; 3])],
    peers: &[SocketAddr],
) -> (Node, Arc<ClusterSource>) {
    front_with(metrics, cluster_config(peers)).await
}

async fn front_with(
    metrics: &[(&str, [Option<f64>; 3])],
    config: Config,
) -> (Node, Arc<ClusterSource>) {
    let cluster = Arc::new(ClusterSource::new(memory(metrics), &config).expect("cluster source"));
    let node = start(bind().await, cluster.clone(), config);
    (node, cluster)
}

async fn get(addr: SocketAddr, path_and_query: &str) -> (u16, String) {
    let r = reqwest::get(format!("http://{addr}{path_and_query}"))
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.text().await.unwrap())
}

async fn get_json(addr: SocketAddr, path_and_query: &str) -> serde_json::Value {
    let (status, body) = get(addr, path_and_query).await;
    assert_eq!(status, 200, "{path_and_query}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path_and_query}: {e}: {body}"))
}

/// `/render?format=json` as `target → [value per timestamp]`.
async fn render(addr: SocketAddr, target: &str) -> Vec<(String, Vec<Option<f64>>)> {
    let json = get_json(
        addr,
        &format!("/render?target={target}&{WINDOW}&format=json"),
    )
    .await;
    json.as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let points = s["datapoints"].as_array().unwrap();
            let times: Vec<i64> = points.iter().map(|p| p[1].as_i64().unwrap()).collect();
            assert_eq!(times, vec![T0, T0 + 60, T0 + 120], "{s}");
            (
                s["target"].as_str().unwrap().to_owned(),
                points.iter().map(|p| p[0].as_f64()).collect(),
            )
        })
        .collect()
}

/// Leaf texts of a treejson find.
async fn find(addr: SocketAddr, query: &str) -> Vec<String> {
    let json = get_json(addr, &format!("/metrics/find?query={query}")).await;
    let mut names: Vec<String> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["text"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

fn all(values: [f64; 3]) -> [Option<f64>; 3] {
    values.map(Some)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finds_and_renders_the_union_and_evaluates_over_it() {
    let a = plain(&[("servers.a1.cpu", all([1.0, 2.0, 3.0]))]).await;
    let b = plain(&[
        ("servers.b1.cpu", all([10.0, 20.0, 30.0])),
        ("servers.b2.cpu", all([1000.0, 2000.0, 3000.0])),
    ])
    .await;
    let (f, _) = front(
        &[("servers.f1.cpu", all([100.0, 200.0, 300.0]))],
        &[a.addr(), b.addr()],
    )
    .await;

    assert_eq!(find(f.addr(), "servers.*").await, ["a1", "b1", "b2", "f1"]);
    assert_eq!(find(f.addr(), "servers.b*.cpu").await, ["cpu"]);
    // The function runs on the front end over the series of all three nodes.
    assert_eq!(
        render(f.addr(), "sumSeries(servers.*.cpu)").await,
        [(
            "sumSeries(servers.*.cpu)".to_owned(),
            vec![Some(1111.0), Some(2222.0), Some(3333.0)]
        )]
    );
    assert_eq!(
        render(f.addr(), "countSeries(servers.{a1,b2}.cpu)").await[0].1,
        vec![Some(2.0); 3]
    );
    let each = render(f.addr(), "servers.*.cpu").await;
    let names: Vec<&str> = each.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "servers.a1.cpu",
            "servers.b1.cpu",
            "servers.b2.cpu",
            "servers.f1.cpu"
        ]
    );
    let index = get_json(f.addr(), "/metrics/index.json").await;
    assert_eq!(
        index,
        serde_json::json!([
            "servers.a1.cpu",
            "servers.b1.cpu",
            "servers.b2.cpu",
            "servers.f1.cpu"
        ])
    );
    let expanded = get_json(f.addr(), "/metrics/expand?query=servers.*&leavesOnly=0").await;
    assert_eq!(
        expanded["results"],
        serde_json::json!(["servers.a1", "servers.b1", "servers.b2", "servers.f1"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_of_one_series_are_merged_local_first() {
    let a = plain(&[("shared.metric", [None, Some(2.0), None])]).await;
    let b = plain(&[("shared.metric", [Some(9.0), Some(8.0), Some(3.0)])]).await;
    let (f, _) = front(
        &[("shared.metric", [Some(1.0), None, None])],
        &[a.addr(), b.addr()],
    )
    .await;
    // Local 1, then a's 2 fills the gap, then b fills what is still empty.
    assert_eq!(
        render(f.addr(), "shared.metric").await,
        [(
            "shared.metric".to_owned(),
            vec![Some(1.0), Some(2.0), Some(3.0)]
        )]
    );
    // One leaf, not three.
    assert_eq!(find(f.addr(), "shared.*").await, ["metric"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_branch_on_one_node_and_a_leaf_on_another_are_both_listed() {
    let a = plain(&[("mixed.x", all([1.0, 1.0, 1.0]))]).await;
    let (f, _) = front(&[("mixed.x.y", all([2.0, 2.0, 2.0]))], &[a.addr()]).await;
    let json = get_json(f.addr(), "/metrics/find?query=mixed.*&format=json").await;
    assert_eq!(
        json,
        serde_json::json!([
            {"path": "mixed.x", "is_leaf": false},
            {"path": "mixed.x", "is_leaf": true}
        ])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tagged_series_come_from_every_node() {
    let a = plain(&[("cpu;host=a", all([1.0, 2.0, 3.0]))]).await;
    let b = plain(&[("cpu;host=b", all([10.0, 20.0, 30.0]))]).await;
    let (f, _) = front(
        &[("disk;host=f", all([0.0, 0.0, 0.0]))],
        &[a.addr(), b.addr()],
    )
    .await;
    assert_eq!(
        render(f.addr(), "sumSeries(seriesByTag('name=cpu'))").await[0].1,
        vec![Some(11.0), Some(22.0), Some(33.0)]
    );
    assert_eq!(
        get_json(f.addr(), "/tags/findSeries?expr=host!=").await,
        serde_json::json!(["cpu;host=a", "cpu;host=b", "disk;host=f"])
    );
    let values = get_json(f.addr(), "/tags/autoComplete/values?tag=host").await;
    assert_eq!(values, serde_json::json!(["a", "b", "f"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_that_list_each_other_do_not_recurse() {
    // Both nodes are cluster front ends of each other; `local=1` stops the fan-out after one
    // hop, so each answer holds each series once.
    let (la, lb) = (bind().await, bind().await);
    let (addr_a, addr_b) = (la.local_addr().unwrap(), lb.local_addr().unwrap());
    let cluster_a = ClusterSource::new(
        memory(&[("m.a", all([1.0, 1.0, 1.0]))]),
        &cluster_config(&[addr_b]),
    )
    .unwrap();
    let cluster_b = ClusterSource::new(
        memory(&[("m.b", all([2.0, 2.0, 2.0]))]),
        &cluster_config(&[addr_a]),
    )
    .unwrap();
    let _a = start(la, Arc::new(cluster_a), cluster_config(&[addr_b]));
    let _b = start(lb, Arc::new(cluster_b), cluster_config(&[addr_a]));
    for addr in [addr_a, addr_b] {
        assert_eq!(find(addr, "m.*").await, ["a", "b"]);
        assert_eq!(
            render(addr, "sumSeries(m.*)").await[0].1,
            vec![Some(3.0); 3]
        );
        assert_eq!(render(addr, "m.*").await.len(), 2, "each series once");
    }
    // With local=1 a node answers from its own data only.
    assert_eq!(
        get_json(addr_a, "/metrics/find?query=m.*&local=1&format=json").await,
        serde_json::json!([{"path": "m.a", "is_leaf": true}])
    );
    let (status, raw) = get(
        addr_b,
        &format!("/render?target=m.*&{WINDOW}&format=raw&local=1"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(raw, format!("m.b,{T0},{},60|2.0,2.0,2.0\n", T0 + 180));
    assert_eq!(
        get_json(addr_a, "/metrics/index.json?local=1").await,
        serde_json::json!(["m.a"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_down_or_hanging_gives_partial_results_not_an_error() {
    let a = plain(&[("servers.a1.cpu", all([1.0, 2.0, 3.0]))]).await;
    // A port nobody listens on any more: connections are refused.
    let down = bind().await.local_addr().unwrap();
    // A peer that accepts connections and never answers: requests time out.
    let hanging = bind().await;
    let hanging_addr = hanging.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = hanging.accept().await {
            open.push(stream);
        }
    });
    // The hanging peer costs one timeout; the failed peers are then skipped for a minute,
    // longer than this test can take.
    let config = Config {
        cluster_find_timeout: Duration::from_secs(2),
        cluster_fetch_timeout: Duration::from_secs(2),
        cluster_retry_delay: Duration::from_secs(60),
        ..cluster_config(&[down, a.addr(), hanging_addr])
    };
    let (f, cluster) = front_with(&[("servers.f1.cpu", all([100.0, 200.0, 300.0]))], config).await;

    assert_eq!(find(f.addr(), "servers.*").await, ["a1", "f1"]);
    let stats = cluster.stats();
    assert_eq!(stats.requests, 3);
    assert_eq!(stats.failures, 2, "{stats:?}");
    // Both failed peers are now skipped for the retry delay; the answers stay partial and
    // fast.
    assert_eq!(
        render(f.addr(), "sumSeries(servers.*.cpu)").await[0].1,
        vec![Some(101.0), Some(202.0), Some(303.0)]
    );
    let stats = cluster.stats();
    assert_eq!(stats.skipped, 4, "{stats:?}");
    assert_eq!(stats.failures, 2, "{stats:?}");
    assert_eq!(
        get_json(f.addr(), "/metrics/index.json").await,
        serde_json::json!(["servers.a1.cpu", "servers.f1.cpu"])
    );
    held.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_refusing_a_query_is_left_out_but_not_skipped() {
    // A peer with a tiny series limit answers 400 for a wide glob; the front end keeps its own
    // and the other peer's series and asks that peer again next time.
    let strict = start(
        bind().await,
        memory(&[
            ("wide.s1", all([1.0, 1.0, 1.0])),
            ("wide.s2", all([1.0, 1.0, 1.0])),
        ]),
        Config {
            max_series: 1,
            ..Config::default()
        },
    );
    let (f, cluster) = front(&[("wide.f", all([5.0, 5.0, 5.0]))], &[strict.addr()]).await;
    assert_eq!(
        render(f.addr(), "sumSeries(wide.*)").await[0].1,
        vec![Some(5.0); 3]
    );
    assert_eq!(render(f.addr(), "wide.s1").await[0].1, vec![Some(1.0); 3]);
    assert_eq!(cluster.stats().skipped, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_peers_the_local_source_is_used_as_is() {
    let local: Arc<dyn MetricSource> = memory(&[("x", all([1.0, 2.0, 3.0]))]);
    let same = source_for(Arc::clone(&local), &Config::default()).unwrap();
    assert!(Arc::ptr_eq(&local, &same));
    let clustered = source_for(
        Arc::clone(&local),
        &cluster_config(&[bind().await.local_addr().unwrap()]),
    )
    .unwrap();
    assert!(!Arc::ptr_eq(&local, &clustered));
    assert!(Arc::ptr_eq(&clustered.local_source().unwrap(), &local));
}
