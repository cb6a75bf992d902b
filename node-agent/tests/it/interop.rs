//! Interop with Debian's real Munin (packages `munin-node` and `munin` 2.0.73, installed by
//! .ci/setup-munin.sh). Run with `CHARCOAL_INTEROP=1`; then a missing peer fails the test.
//! Without it these tests return at once.
//!
//! Paths (override with env): CHARCOAL_MUNIN_NODE (/usr/sbin/munin-node),
//! CHARCOAL_MUNIN_UPDATE (/usr/share/munin/munin-update), CHARCOAL_MUNIN_PLUGINS
//! (/usr/share/munin/plugins). Needs root (munin-update runs as user `munin`).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use charcoal_node_agent::Config;

use crate::util::*;

fn interop() -> bool {
    std::env::var("CHARCOAL_INTEROP").as_deref() == Ok("1")
}

fn env_path(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var).map_or_else(|| PathBuf::from(default), PathBuf::from)
}

fn munin_node_bin() -> PathBuf {
    let p = env_path("CHARCOAL_MUNIN_NODE", "/usr/sbin/munin-node");
    assert!(
        p.exists(),
        "{} missing: run .ci/setup-munin.sh",
        p.display()
    );
    p
}

fn stock_plugins() -> PathBuf {
    let p = env_path("CHARCOAL_MUNIN_PLUGINS", "/usr/share/munin/plugins");
    assert!(
        p.join("cpu").exists(),
        "{} missing: run .ci/setup-munin.sh",
        p.display()
    );
    p
}

/// The interface the `if_` plugins are compared on: the busiest one that is not `lo`.
fn interface() -> String {
    let dev = std::fs::read_to_string("/proc/net/dev").unwrap();
    dev.lines()
        .skip(2)
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let rx: u64 = rest.split_whitespace().next()?.parse().ok()?;
            Some((name.trim().to_owned(), rx))
        })
        .filter(|(n, _)| n != "lo")
        .max_by_key(|(_, rx)| *rx)
        .map_or_else(|| "lo".into(), |(n, _)| n)
}

/// Stock plugins the built-ins replace, as symlinks the way munin-node-configure makes them.
fn link_stock_plugins(dir: &Path) -> Vec<String> {
    let src = stock_plugins();
    let iface = interface();
    let mut names = Vec::new();
    for p in [
        "cpu",
        "load",
        "memory",
        "uptime",
        "forks",
        "swap",
        "vmstat",
        "interrupts",
        "entropy",
        "open_files",
        "processes",
        "threads",
        "df",
        "df_inode",
        "diskstats",
    ] {
        std::os::unix::fs::symlink(src.join(p), dir.join(p)).unwrap();
        names.push(p.to_owned());
    }
    for (wild, name) in [
        ("if_", format!("if_{iface}")),
        ("if_err_", format!("if_err_{iface}")),
    ] {
        std::os::unix::fs::symlink(src.join(wild), dir.join(&name)).unwrap();
        names.push(name);
    }
    names
}

/// A loopback port for munin-node to bind. It comes from below the kernel's ephemeral range
/// (32768-60999 by default), so nothing in this test process that binds port 0 or connects
/// out can take it before munin-node binds it, and each port is handed out once.
fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const COUNT: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let start = std::process::id().wrapping_mul(7919) % COUNT;
    let _ = NEXT.compare_exchange(u32::MAX, start, Ordering::Relaxed, Ordering::Relaxed);
    for _ in 0..COUNT {
        let port = (FIRST + NEXT.fetch_add(1, Ordering::Relaxed) % COUNT) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {FIRST}..{}", FIRST + COUNT);
}

/// A real munin-node 2.0.73 on a loopback port with a scratch configuration: its plugin
/// directory and plugin-conf.d are those of `s` (MUNIN_CONFDIR pointed at a scratch tree).
struct RefNode {
    child: tokio::process::Child,
    addr: SocketAddr,
}

impl RefNode {
    async fn start(s: &Scratch) -> RefNode {
        let bin = munin_node_bin();
        let root = s.dir.path().join("ref");
        let etc = root.join("etc");
        std::fs::create_dir_all(root.join("state")).unwrap();
        std::fs::create_dir_all(&etc).unwrap();
        // munin-node reads <CONFDIR>/plugins and <CONFDIR>/plugin-conf.d
        std::os::unix::fs::symlink(s.plugins(), etc.join("plugins")).unwrap();
        std::os::unix::fs::symlink(s.conf(), etc.join("plugin-conf.d")).unwrap();
        let port = free_port();
        let conf = etc.join("munin-node.conf");
        std::fs::write(
            &conf,
            format!(
                "log_level 4\nlog_file {root}/munin-node.log\npid_file {root}/munin-node.pid\nbackground 0\nsetsid 0\nuser root\ngroup root\nignore_file [\\#~]$\nignore_file \\.bak$\nhost_name vm\nallow ^127\\.0\\.0\\.1$\nhost 127.0.0.1\nport {port}\ntimeout 20\n",
                root = root.display()
            ),
        )
        .unwrap();
        let child = tokio::process::Command::new("perl")
            .arg("-e")
            .arg("require Munin::Common::Defaults; $Munin::Common::Defaults::MUNIN_CONFDIR = shift; $Munin::Common::Defaults::MUNIN_PLUGSTATE = shift; do shift; die $@ if $@; exit main();")
            .arg(&etc)
            .arg(root.join("state"))
            .arg(&bin)
            .arg("--config")
            .arg(&conf)
            .arg("--foreground")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start munin-node");
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        for _ in 0..300 {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return RefNode { child, addr };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("munin-node did not start on {addr}");
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Debian's plugin-conf.d (as shipped by munin-node) for both nodes.
fn debian_conf(s: &Scratch) {
    let stock = Path::new("/etc/munin/plugin-conf.d/munin-node");
    std::fs::copy(stock, s.conf().join("munin-node")).expect("Debian plugin-conf.d");
    let _ = std::fs::remove_file(s.conf().join("test"));
}

fn live_config(s: &Scratch) -> Config {
    let iface = interface();
    Config {
        host_name: Some("vm".into()),
        plugin_state_dir: s.state(),
        interfaces_exclude: if iface == "lo" {
            vec![]
        } else {
            vec!["lo".into()]
        },
        plugin_timeout: Duration::from_secs(20),
        ..Config::default()
    }
}

/// Field names per multigraph section of a reply.
fn fields(lines: &[String]) -> BTreeSet<String> {
    let mut graph = String::new();
    let mut out = BTreeSet::new();
    for l in lines {
        if let Some(g) = l.strip_prefix("multigraph ") {
            graph = g.to_owned();
        } else if let Some((f, v)) = l.split_once(".value ") {
            assert!(value_shaped(v), "{l:?}");
            out.insert(format!("{graph}/{f}"));
        }
    }
    out
}

/// Compares config (exactly) and fetch (fields and value shapes) of every plugin the
/// reference lists, with the agent's replies. `skip_fetch` names plugins whose first fetch
/// differs by design (state kept per master).
async fn compare(reference: SocketAddr, agent: SocketAddr, skip_fetch: &[&str]) {
    let mut r = Client::connect(reference).await;
    let mut a = Client::connect(agent).await;
    assert_eq!(a.greeting, r.greeting);
    for c in [&mut r, &mut a] {
        assert_eq!(
            c.single("cap multigraph").await,
            "cap multigraph dirtyconfig"
        );
    }
    assert_eq!(a.single("version").await, r.single("version").await);
    let ref_list: BTreeSet<String> = r
        .single("list")
        .await
        .split(' ')
        .map(str::to_owned)
        .collect();
    let agent_list: BTreeSet<String> = a
        .single("list")
        .await
        .split(' ')
        .map(str::to_owned)
        .collect();
    assert!(
        agent_list.is_superset(&ref_list),
        "agent lacks {:?}",
        ref_list.difference(&agent_list)
    );
    eprintln!("compared plugins: {ref_list:?}");
    assert_eq!(a.multi("nodes").await, r.multi("nodes").await);
    for name in &ref_list {
        let want = r.multi(&format!("config {name}")).await;
        let got = a.multi(&format!("config {name}")).await;
        assert_eq!(got, want, "config {name}");
        let want = r.multi(&format!("fetch {name}")).await;
        let got = a.multi(&format!("fetch {name}")).await;
        if !skip_fetch.contains(&name.as_str()) {
            assert_eq!(fields(&got), fields(&want), "fetch {name}");
        }
    }
    for c in [&mut r, &mut a] {
        c.send("quit").await;
        assert!(c.closed().await);
    }
}

/// The built-ins against Debian's stock plugins on the same host, side by side.
#[tokio::test]
async fn interop_builtins_match_munin_node() {
    if !interop() {
        return;
    }
    let s = Scratch::new(&[], "");
    debian_conf(&s);
    link_stock_plugins(&s.plugins());
    let reference = RefNode::start(&s).await;
    let agent = start(live_config(&s)).await;
    // diskstats: the stock plugin's first run for a master prints nothing, and so does ours;
    // the reference's state is fresh too, but the two runs are seconds apart.
    compare(reference.addr, agent.addr, &["diskstats"]).await;
    agent.stop().await;
    reference.stop().await;
}

/// Debian's stock plugins, run by the agent instead of munin-node, give the same replies.
#[tokio::test]
async fn interop_stock_plugins_run_under_the_agent() {
    if !interop() {
        return;
    }
    let s = Scratch::new(&[], "");
    debian_conf(&s);
    link_stock_plugins(&s.plugins());
    let reference = RefNode::start(&s).await;
    let mut config = live_config(&s);
    config.plugin_dir = Some(s.plugins());
    config.plugin_conf_dir = Some(s.conf());
    config.disabled_builtin_plugins = charcoal_node_agent::describe_builtin_plugins()
        .into_iter()
        .map(|(n, _)| n.to_owned())
        .collect();
    let agent = start(config).await;
    compare(reference.addr, agent.addr, &["diskstats"]).await;
    assert_eq!(agent.handle.stats().plugin_failures, 0);
    agent.stop().await;
    reference.stop().await;
}

fn id_of(user: &str) -> (u32, u32) {
    let out = |flag: &str| -> u32 {
        let o = std::process::Command::new("id")
            .arg(flag)
            .arg(user)
            .output()
            .expect("id");
        assert!(
            o.status.success(),
            "user {user} missing: run .ci/setup-munin.sh"
        );
        String::from_utf8(o.stdout).unwrap().trim().parse().unwrap()
    };
    (out("-u"), out("-g"))
}

fn chown_tree(p: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(p, Some(uid), Some(gid)).unwrap();
    if p.is_dir() {
        for e in std::fs::read_dir(p).unwrap().flatten() {
            chown_tree(&e.path(), uid, gid);
        }
    }
}

/// `rrdtool info`'s last raw value fed to the RRD.
fn rrd_last(file: &Path) -> String {
    let out = std::process::Command::new("rrdtool")
        .arg("info")
        .arg(file)
        .output()
        .expect("rrdtool (installed with munin)");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("ds[42].last_ds = "))
        .unwrap_or_else(|| panic!("no last_ds in {}: {text}", file.display()))
        .trim_matches('"')
        .to_owned()
}

/// Debian's munin-update polls the agent and stores values of built-in and script plugins.
#[tokio::test]
async fn interop_munin_update_polls_the_agent() {
    if !interop() {
        return;
    }
    let update = env_path("CHARCOAL_MUNIN_UPDATE", "/usr/share/munin/munin-update");
    assert!(
        update.exists(),
        "{} missing: run .ci/setup-munin.sh",
        update.display()
    );
    let plugins: Vec<(&str, &str)> = TEST_PLUGINS
        .iter()
        .copied()
        .filter(|(n, _)| ["t_multi", "t_dirty", "t_virtual"].contains(n))
        .collect();
    let s = Scratch::new(&plugins, "");
    std::os::unix::fs::symlink(
        stock_plugins().join("open_inodes"),
        s.plugins().join("open_inodes"),
    )
    .unwrap();
    let mut config = live_config(&s);
    config.plugin_dir = Some(s.plugins());
    config.plugin_conf_dir = Some(s.conf());
    let agent = start(config).await;

    let master = s.dir.path().join("master");
    for d in ["db", "www", "log", "run"] {
        std::fs::create_dir_all(master.join(d)).unwrap();
    }
    let conf = master.join("munin.conf");
    std::fs::write(
        &conf,
        format!(
            "dbdir {m}/db\nhtmldir {m}/www\nlogdir {m}/log\nrundir {m}/run\n\n[test;vm]\n    address 127.0.0.1\n    port {port}\n    use_node_name yes\n",
            m = master.display(),
            port = agent.addr.port()
        ),
    )
    .unwrap();
    let (uid, gid) = id_of("munin");
    chown_tree(&master, uid, gid);
    // Twice: counters and diskstats need a previous sample.
    for _ in 0..2 {
        let out = tokio::process::Command::new("runuser")
            .args(["-u", "munin", "--"])
            .arg(&update)
            .arg(format!("--config_file={}", conf.display()))
            .arg("--nofork")
            .output()
            .await
            .expect("run munin-update");
        assert!(
            out.status.success(),
            "munin-update: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let db = master.join("db/test");
    let iface = interface();
    let must_exist = [
        "vm-load-load-g.rrd".to_owned(),
        "vm-cpu-user-d.rrd".into(),
        "vm-memory-free-g.rrd".into(),
        "vm-swap-swap_in-d.rrd".into(),
        "vm-forks-forks-d.rrd".into(),
        "vm-uptime-uptime-g.rrd".into(),
        format!("vm-if_{iface}-down-d.rrd"),
        format!("vm-if_err_{iface}-rcvd-c.rrd"),
        "vm-t_multi-total-d.rrd".into(),
        "vm-t_multi-child1-part-g.rrd".into(),
        "vm-t_dirty-dirty-g.rrd".into(),
        "vm-open_inodes-used-g.rrd".into(),
    ];
    let have: Vec<String> = std::fs::read_dir(&db)
        .unwrap_or_else(|e| panic!("{}: {e}", db.display()))
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    for f in &must_exist {
        assert!(have.contains(f), "{f} not stored; have {have:?}");
    }
    assert!(value_shaped(&rrd_last(&db.join("vm-load-load-g.rrd"))));
    assert_eq!(rrd_last(&db.join("vm-t_dirty-dirty-g.rrd")), "7");
    assert_eq!(rrd_last(&db.join("vm-t_multi-child1-part-g.rrd")), "3.5");
    assert!(
        rrd_last(&db.join("vm-cpu-user-d.rrd"))
            .parse::<u64>()
            .is_ok()
    );
    // the virtual node is a node of its own for the master: not polled under "vm"
    assert!(!have.iter().any(|f| f.contains("t_virtual")));
    agent.stop().await;
}
