//! The munin protocol over a real socket, against the conformance transcripts of
//! shared/spec/munin.md §9 (copied to tests/data/transcripts by extract-transcripts.py).
//!
//! Comparison rules from the spec: protocol lines and config lines match exactly; values
//! are compared by shape; `list` and `nodes` as sets. Built-ins read the captured fixture
//! host (tests/data/proc-vm), which has the transcript machine's shape (2 CPUs, kernel 6).

use std::collections::BTreeSet;

use crate::util::*;

fn transcript(id: &str) -> String {
    std::fs::read_to_string(data_dir().join(format!("transcripts/{id}.txt"))).unwrap()
}

/// Replays a transcript: sends every `C:` line and compares the reply with the `S:` lines
/// (values by shape), expecting a close where the transcript says the node closed.
async fn replay(addr: std::net::SocketAddr, id: &str) {
    let text = transcript(id);
    let mut steps: Vec<(String, Vec<String>)> = Vec::new();
    let mut greeting = None;
    for line in text.lines().skip(1) {
        if let Some(c) = line.strip_prefix("C:") {
            let c = c.strip_prefix(' ').unwrap_or(c).replace("\\r", "\r");
            steps.push((c, Vec::new()));
        } else if let Some(s) = line.strip_prefix("S: ") {
            match steps.last_mut() {
                Some((_, replies)) => replies.push(s.to_owned()),
                None => greeting = Some(s.to_owned()),
            }
        } else if line == "S:" {
            if let Some((_, replies)) = steps.last_mut() {
                replies.push(String::new());
            }
        } else if line.starts_with("(node closes the connection)")
            && let Some((_, replies)) = steps.last_mut()
        {
            replies.push("<close>".to_owned());
        }
    }
    let mut c = Client::connect(addr).await;
    assert_eq!(Some(c.greeting.clone()), greeting, "{id}: greeting");
    for (cmd, want) in steps {
        c.send(&cmd).await;
        for w in want {
            if w == "<close>" {
                assert!(c.closed().await, "{id}: `{cmd}` closes the session");
                continue;
            }
            let got = c
                .line()
                .await
                .unwrap_or_else(|| panic!("{id}: `{cmd}`: EOF, wanted {w:?}"));
            match (w.split_once(".value "), got.split_once(".value ")) {
                (Some((wf, _)), Some((gf, gv))) => {
                    assert_eq!(gf, wf, "{id}: `{cmd}` field");
                    assert!(value_shaped(gv), "{id}: `{cmd}`: {got:?} is not a value");
                }
                _ => assert_eq!(got, w, "{id}: `{cmd}`"),
            }
        }
    }
}

#[tokio::test]
async fn transcripts_replayed_exactly() {
    let s = Scratch::new(TEST_PLUGINS, TEST_CONF);
    let agent = start(test_config(&s)).await;
    for id in [
        "T01", "T02", "T03", "T04", "T05", "T12", "T13", "T14", "T16", "T18", "T19", "T20", "T22",
        "T23", "T24", "T25", "T26", "T27", "T29", "T31",
    ] {
        replay(agent.addr, id).await;
    }
    agent.stop().await;
}

fn words(line: &str) -> BTreeSet<String> {
    line.split(' ')
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The `list` reply of a transcript (the first S: line after a `C: list...`).
fn transcript_list(id: &str) -> BTreeSet<String> {
    let t = transcript(id);
    let mut lines = t
        .lines()
        .skip_while(|l| !l.starts_with("C: list") && !l.starts_with("C: LIST"));
    lines.next();
    words(lines.next().unwrap().strip_prefix("S: ").unwrap())
}

#[tokio::test]
async fn list_filtering_by_capabilities_t06_t07_t09_t28() {
    let s = Scratch::new(TEST_PLUGINS, TEST_CONF);
    let agent = start(test_config(&s)).await;

    // T06: before cap, multigraph plugins are hidden
    let mut c = Client::connect(agent.addr).await;
    let plain = words(&c.single("list").await);
    // the transcript node's plugins that we serve too (built-ins and the test plugins)
    let t06 = transcript_list("T06");
    assert!(
        plain.is_superset(&t06),
        "missing {:?}",
        t06.difference(&plain)
    );
    assert!(!plain.contains("diskstats") && !plain.contains("t_multi"));
    assert!(!plain.contains("t_virtual"), "belongs to virtual.example");

    // T07: after cap multigraph
    assert_eq!(
        c.single("cap multigraph").await,
        "cap multigraph dirtyconfig"
    );
    let multi = words(&c.single("list").await);
    let t07 = transcript_list("T07");
    assert!(
        multi.is_superset(&t07),
        "missing {:?}",
        t07.difference(&multi)
    );
    assert_eq!(
        multi.difference(&plain).cloned().collect::<Vec<_>>(),
        ["diskstats", "t_multi"]
    );

    // T09: own name and unknown name
    assert_eq!(words(&c.single("list vm").await), multi);
    assert_eq!(c.single("list no.such.node").await, "");

    // T10/T11: virtual node
    let nodes: BTreeSet<String> = c.multi("nodes").await.into_iter().collect();
    assert_eq!(nodes, ["virtual.example", "vm"].map(String::from).into());
    assert_eq!(c.single("list virtual.example").await, "t_virtual");
    assert_eq!(c.single("list VIRTUAL.EXAMPLE").await, "t_virtual");
    assert_eq!(c.multi("fetch t_virtual").await, ["v.value 5"]);

    // T28: case-insensitive commands
    let mut c = Client::connect(agent.addr).await;
    assert_eq!(
        c.single("CAP multigraph").await,
        "cap multigraph dirtyconfig"
    );
    let t28 = transcript_list("T28");
    let upper = words(&c.single("LIST").await);
    assert!(
        upper.is_superset(&t28),
        "missing {:?}",
        t28.difference(&upper)
    );
    assert_eq!(
        c.single("Version").await,
        "munins node on vm version: 2.0.73"
    );
    assert_eq!(c.multi("NODES").await.len(), 2);
    c.send("QUIT").await;
    assert!(c.closed().await);
    agent.stop().await;
}

#[tokio::test]
async fn list_is_sorted_and_has_no_trailing_space() {
    let s = Scratch::new(TEST_PLUGINS, TEST_CONF);
    let agent = start(test_config(&s)).await;
    let mut c = Client::connect(agent.addr).await;
    let l = c.single("list").await;
    assert!(!l.ends_with(' ') && !l.starts_with(' ') && !l.contains("  "));
    let names: Vec<&str> = l.split(' ').collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted);
    agent.stop().await;
}

#[tokio::test]
async fn sessions_past_the_limit_wait_for_a_free_one() {
    let s = Scratch::new(TEST_PLUGINS, TEST_CONF);
    let mut config = test_config(&s);
    config.munin_max_sessions = 1;
    let agent = start(config).await;
    let mut first = Client::connect(agent.addr).await;
    // The second connection completes in the kernel but is not served yet: no greeting.
    let mut second = tokio::net::TcpStream::connect(agent.addr).await.unwrap();
    let mut buf = [0u8; 256];
    let early = tokio::time::timeout(
        std::time::Duration::from_millis(300),
        tokio::io::AsyncReadExt::read(&mut second, &mut buf),
    )
    .await;
    assert!(early.is_err(), "greeted past the limit: {early:?}");
    // Once the first session ends, the waiting one is greeted.
    first.send("quit").await;
    assert!(first.closed().await);
    let n = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tokio::io::AsyncReadExt::read(&mut second, &mut buf),
    )
    .await
    .expect("greeting once a slot is free")
    .unwrap();
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("# munin node at "),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    agent.stop().await;
}

/// The `S:` lines of the first reply to `cmd` in a transcript (up to and without `.`).
fn transcript_reply(id: &str, cmd: &str) -> Vec<String> {
    let t = transcript(id);
    t.lines()
        .skip_while(|l| *l != format!("C: {cmd}"))
        .skip(1)
        .take_while(|l| *l != "S: .")
        .filter_map(|l| l.strip_prefix("S: ").map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn builtin_memory_and_df_t15_t17() {
    let s = Scratch::new(&[], "");
    let agent = start(test_config(&s)).await;
    let mut c = Client::connect(agent.addr).await;
    // T15: the same fields as the stock memory plugin (values by shape)
    let fields = |lines: &[String]| -> BTreeSet<String> {
        lines
            .iter()
            .filter_map(|l| l.split_once(".value ").map(|(f, _)| f.to_owned()))
            .collect()
    };
    let got = c.multi("fetch memory").await;
    assert_eq!(
        fields(&got),
        fields(&transcript_reply("T15", "fetch memory"))
    );
    assert!(
        got.iter()
            .all(|l| value_shaped(l.split_once(' ').unwrap().1))
    );
    // T17: df graph attributes exactly; one label/warning/critical triple per file system
    let got = c.multi("config df").await;
    let want = transcript_reply("T17", "config df");
    assert_eq!(got[..5], want[..5]);
    for chunk in got[5..].chunks(3) {
        let field = chunk[0].split_once(".label ").unwrap().0;
        assert_eq!(chunk[1], format!("{field}.warning 92"));
        assert_eq!(chunk[2], format!("{field}.critical 98"));
    }
    let values = c.multi("fetch df").await;
    assert_eq!(values.len(), (got.len() - 5) / 3);
    agent.stop().await;
}

#[tokio::test]
async fn builtin_diskstats_root_graph_t21() {
    let s = Scratch::new(&[], "");
    let agent = start(test_config(&s)).await;
    let mut c = Client::connect(agent.addr).await;
    assert_eq!(
        c.single("cap multigraph dirtyconfig").await,
        "cap multigraph dirtyconfig"
    );
    let got = c.multi("config diskstats").await;
    let want = transcript_reply("T21", "config diskstats");
    // the transcript abridges the per-device child graphs; the root graphs match line by line
    let root = want.iter().take_while(|l| !l.starts_with("   ...")).count();
    assert_eq!(got[..root], want[..root]);
    assert!(got.iter().any(|l| l == "multigraph diskstats_iops.vda"));
    agent.stop().await;
}

#[tokio::test]
async fn dirtyconfig_builtins_carry_values_in_config() {
    let s = Scratch::new(&[], "");
    let agent = start(test_config(&s)).await;
    let mut c = Client::connect(agent.addr).await;
    let plain = c.multi("config load").await;
    assert!(!plain.iter().any(|l| l.contains(".value ")));
    c.single("cap multigraph dirtyconfig").await;
    let dirty = c.multi("config load").await;
    assert_eq!(dirty[..plain.len()], plain[..]);
    assert_eq!(dirty[plain.len()..], ["load.value 0.16"]);
    agent.stop().await;
}

#[tokio::test]
async fn starttls_is_an_unknown_command_t30() {
    let s = Scratch::new(&[], "");
    let agent = start(test_config(&s)).await;
    let mut c = Client::connect(agent.addr).await;
    // deviation from T30 ("TLS MAYBE") allowed by spec §2.9 until TLS is implemented
    assert_eq!(
        c.single("starttls").await,
        "# Unknown command. Try cap, list, nodes, config, fetch, version or quit"
    );
    agent.stop().await;
}

#[tokio::test]
async fn garbage_plugin_keeps_the_session_in_sync_t34() {
    let s = Scratch::new(TEST_PLUGINS, TEST_CONF);
    let agent = start(test_config(&s)).await;
    let mut c = Client::connect(agent.addr).await;
    assert_eq!(
        c.multi("config t_garbage").await,
        transcript_reply("T34", "config t_garbage")
    );
    // munin-node relays the plugin's lone "." and desynchronises (T34); the agent drops it.
    assert_eq!(
        c.multi("fetch t_garbage").await,
        [
            "a.value 1",
            "b.value U",
            "junk line",
            "c.value 1700000000:5"
        ]
    );
    assert_eq!(
        c.single("version").await,
        "munins node on vm version: 2.0.73"
    );
    assert_eq!(agent.handle.stats().plugin_lines_dropped, 1);
    agent.stop().await;
}

#[tokio::test]
async fn request_split_across_writes_and_crlf() {
    use tokio::io::AsyncWriteExt as _;
    let s = Scratch::new(&[], "");
    let agent = start(test_config(&s)).await;
    let mut raw = tokio::net::TcpStream::connect(agent.addr).await.unwrap();
    let mut buf = vec![0u8; 64];
    let _ = tokio::io::AsyncReadExt::read(&mut raw, &mut buf)
        .await
        .unwrap();
    raw.write_all(b"vers").await.unwrap();
    raw.flush().await.unwrap();
    raw.write_all(b"ion\r\n").await.unwrap();
    let mut reply = vec![0u8; 128];
    let n = tokio::io::AsyncReadExt::read(&mut raw, &mut reply)
        .await
        .unwrap();
    assert_eq!(&reply[..n], b"munins node on vm version: 2.0.73\n");
    agent.stop().await;
}

#[tokio::test]
async fn refused_peers_get_no_bytes() {
    let s = Scratch::new(&[], "");
    let mut config = test_config(&s);
    config.munin_allow = vec!["10.0.0.0/8".into()];
    let agent = start(config).await;
    let mut raw = tokio::net::TcpStream::connect(agent.addr).await.unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(
        REPLY_DEADLINE,
        tokio::io::AsyncReadExt::read(&mut raw, &mut buf),
    )
    .await
    .unwrap()
    .unwrap_or(0);
    assert_eq!(n, 0);
    assert_eq!(agent.handle.stats().munin_refused, 1);
    agent.stop().await;
}

#[tokio::test]
async fn shutdown_closes_idle_sessions_and_drains() {
    let s = Scratch::new(&[], "");
    let agent = start(test_config(&s)).await;
    let mut c = Client::connect(agent.addr).await;
    assert_eq!(
        c.single("version").await,
        "munins node on vm version: 2.0.73"
    );
    let addr = agent.addr;
    agent.stop().await;
    assert!(c.closed().await);
    // the port is free again
    tokio::net::TcpListener::bind(addr).await.unwrap();
}
