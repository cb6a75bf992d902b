//! The munin-node protocol server (spec §2): greeting, `cap`, `list`, `nodes`, `config`,
//! `fetch`, `version`, `quit`, for built-in collectors and script plugins alike. Each reply is
//! written with one write (munin-node writes line by line and pays ~40 ms per reply to
//! delayed ACKs, spec §2.6).

mod command;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::collect::{BuiltinPlugin, Filters, Host, Needs, PluginCtx, PluginState, df_mounts};
use crate::config::{Cidr, Config};
use crate::events;
use crate::plugin::{Outcome, Plugins, ScriptPlugin};
use crate::statfs::FsProbe;
use crate::stats::{Stats, bump};
use command::Command;

/// The version munin-node 2.0.73 reports; masters do not parse it (spec §2.4).
const VERSION_LINE_TAIL: &str = "version: 2.0.73";
const UNKNOWN_COMMAND: &str =
    "# Unknown command. Try cap, list, nodes, config, fetch, version or quit\n";
/// Longest request line accepted; a longer one closes the session.
const MAX_LINE: u64 = 16 * 1024;

/// What every session shares.
pub(crate) struct Node {
    /// The node name in the greeting (`host_name` or the system host name).
    pub(crate) name: String,
    /// Built-in plugins served.
    pub(crate) builtins: Vec<&'static BuiltinPlugin>,
    /// Script plugins, published once the start-up probe is done.
    pub(crate) plugins: watch::Receiver<Option<Arc<Plugins>>>,
    pub(crate) filters: Filters,
    /// For built-in plugins' /proc reads.
    pub(crate) config: Arc<Config>,
    pub(crate) fs_probe: FsProbe,
    /// Built-in plugin state kept per master (diskstats).
    pub(crate) plugin_state: PluginState,
    pub(crate) allow: Vec<Cidr>,
    pub(crate) session_timeout: Duration,
    /// Sessions served at once; more connections wait in the accept queue.
    pub(crate) max_sessions: usize,
    pub(crate) stats: Arc<Stats>,
}

/// Accepts connections until `shutdown`; sessions run in `tracker`.
pub(crate) async fn serve(
    listener: TcpListener,
    node: Arc<Node>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(node.max_sessions.max(1)));
    loop {
        // A free session slot first: past the limit, connections wait to be accepted.
        let slot = tokio::select! {
            () = shutdown.cancelled() => break,
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // EMFILE and friends: back off briefly instead of spinning.
                tracing::warn!(error = %e, "munin: accept failed");
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(Duration::from_millis(100)) => continue,
                }
            }
        };
        if !node.allow.iter().any(|c| c.contains(peer.ip())) {
            // Like munin-node: accepted, then closed without a byte.
            bump(&node.stats.munin_refused);
            events::MUNIN_REFUSED.log(|suppressed| {
                tracing::warn!(peer = %peer.ip(), suppressed, "munin: denying connection");
            });
            drop(stream);
            continue;
        }
        bump(&node.stats.munin_sessions);
        let (node, shutdown) = (node.clone(), shutdown.clone());
        tracker.spawn(async move {
            let timeout = node.session_timeout;
            // munin-node's global_timeout counts from the greeting, busy or not.
            let _ = tokio::time::timeout(timeout, session(stream, peer, &node, &shutdown)).await;
            drop(slot);
        });
    }
}

/// Per-session state.
struct Session {
    multigraph: bool,
    dirtyconfig: bool,
    /// The master's address as text (`MUNIN_MASTER_IP`).
    peer_ip: String,
    /// /proc readings for built-in plugins, created on first use.
    host: Option<Host>,
}

async fn session(stream: TcpStream, peer: SocketAddr, node: &Node, shutdown: &CancellationToken) {
    let _ = stream.set_nodelay(true);
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::new(rd);
    let greeting = format!("# munin node at {}\n", node.name);
    if wr.write_all(greeting.as_bytes()).await.is_err() {
        return;
    }
    let mut s = Session {
        multigraph: false,
        dirtyconfig: false,
        peer_ip: peer.ip().to_canonical().to_string(),
        host: None,
    };
    let mut buf = Vec::with_capacity(256);
    let mut reply = String::with_capacity(4096);
    loop {
        buf.clear();
        let mut limited = (&mut rd).take(MAX_LINE);
        let read = tokio::select! {
            () = shutdown.cancelled() => return,
            r = limited.read_until(b'\n', &mut buf) => r,
        };
        match read {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let eof_line = buf.last() != Some(&b'\n');
        if eof_line && buf.len() as u64 >= MAX_LINE {
            tracing::debug!(peer = %peer, "munin: request line too long; closing");
            return;
        }
        if !eof_line {
            buf.pop();
        }
        let line = String::from_utf8_lossy(&buf);
        reply.clear();
        let cmd = command::parse(&line);
        if cmd == Command::Quit {
            return;
        }
        // A plugin run in progress is abandoned at shutdown (its process group is killed).
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = handle(node, &mut s, cmd, &mut reply) => {}
        }
        if wr.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
        if eof_line {
            return;
        }
    }
}

async fn handle(node: &Node, s: &mut Session, cmd: Command<'_>, reply: &mut String) {
    match cmd {
        Command::Quit => {}
        Command::Cap(words) => {
            for w in words {
                match w {
                    "multigraph" => s.multigraph = true,
                    "dirtyconfig" => s.dirtyconfig = true,
                    _ => {}
                }
            }
            reply.push_str("cap multigraph dirtyconfig\n");
        }
        Command::List(name) => list(node, s, name, reply).await,
        Command::Nodes => nodes(node, reply).await,
        Command::Version => {
            reply.push_str("munins node on ");
            reply.push_str(&node.name);
            reply.push(' ');
            reply.push_str(VERSION_LINE_TAIL);
            reply.push('\n');
        }
        Command::Config(name) => service(node, s, name, true, reply).await,
        Command::Fetch(name) => service(node, s, name, false, reply).await,
        Command::Unknown => reply.push_str(UNKNOWN_COMMAND),
    }
}

async fn plugins(node: &Node) -> Option<Arc<Plugins>> {
    let mut rx = node.plugins.clone();
    let r = rx.wait_for(Option::is_some).await.ok()?;
    r.clone()
}

/// Names of the built-in plugins now (wildcard instances from the current interface list).
fn builtin_names(node: &Node, host: &mut Host) -> Vec<(String, bool)> {
    let needs_netdev = node.builtins.iter().any(|b| b.instances.is_some());
    if needs_netdev {
        host.refresh(Needs::NETDEV, &mut |_| {});
    }
    let mut out = Vec::new();
    for b in &node.builtins {
        match b.instances {
            Some(instances) => {
                for i in instances(host, &node.filters) {
                    out.push((format!("{}{i}", b.name), b.multigraph));
                }
            }
            None => out.push((b.name.to_owned(), b.multigraph)),
        }
    }
    out
}

async fn list(node: &Node, s: &Session, name: Option<&str>, reply: &mut String) {
    let wanted = name.unwrap_or(&node.name).to_lowercase();
    let own = node.name.to_lowercase();
    let Some(plugins) = plugins(node).await else {
        reply.push('\n');
        return;
    };
    let mut names = BTreeSet::new();
    if wanted == own {
        let mut host = Host::new(&node.config);
        for (n, multigraph) in builtin_names(node, &mut host) {
            if multigraph && !s.multigraph {
                continue;
            }
            names.insert(n);
        }
    }
    let mut known_node = wanted == own;
    for p in plugins.list.values().filter(|p| p.node == wanted) {
        known_node = true;
        if (p.multigraph && !s.multigraph) || (p.dirty && !s.dirtyconfig) {
            continue;
        }
        names.insert(p.name.clone());
    }
    if !known_node {
        events::MUNIN_LIST_MISMATCH.log(|suppressed| {
            tracing::warn!(asked = %wanted, node = %own, suppressed, "munin: master asked for the plugins of an unknown node (check use_node_name / host_name); answering an empty list");
        });
    }
    let mut first = true;
    for n in names {
        if !first {
            reply.push(' ');
        }
        first = false;
        reply.push_str(&n);
    }
    reply.push('\n');
}

async fn nodes(node: &Node, reply: &mut String) {
    let mut names = BTreeSet::new();
    if !node.builtins.is_empty() {
        names.insert(node.name.to_lowercase());
    }
    if let Some(plugins) = plugins(node).await {
        for p in plugins.list.values() {
            names.insert(p.node.clone());
        }
    }
    for n in names {
        reply.push_str(&n);
        reply.push('\n');
    }
    reply.push_str(".\n");
}

/// What a service name refers to.
enum Target<'a> {
    Builtin(&'static BuiltinPlugin, String),
    Script(&'a ScriptPlugin),
}

async fn service(node: &Node, s: &mut Session, name: &str, config: bool, reply: &mut String) {
    let host = s.host.get_or_insert_with(|| Host::new(&node.config));
    // Built-ins answer at once, even while script plugins are still being probed.
    let builtin = find_builtin(node, host, name);
    let plugins = match builtin {
        Some(_) => None,
        None => plugins(node).await,
    };
    let target = builtin.map(|(b, i)| Target::Builtin(b, i)).or_else(|| {
        plugins
            .as_ref()
            .and_then(|p| p.list.get(name))
            .map(Target::Script)
    });
    match target {
        None => reply.push_str("# Unknown service\n"),
        Some(Target::Builtin(b, instance)) => {
            run_builtin(node, s, b, &instance, config, reply).await;
        }
        Some(Target::Script(p)) => {
            let arg = config.then_some("config");
            let Some(plugins) = plugins.as_ref() else {
                reply.push_str("# Unknown service\n");
                return;
            };
            match plugins
                .runner
                .run(&p.name, &p.section, arg, &s.peer_ip, s.dirtyconfig)
                .await
            {
                Outcome::Lines(lines) => {
                    for l in lines {
                        reply.push_str(&l);
                        reply.push('\n');
                    }
                }
                Outcome::TimedOut => reply.push_str("# Timed out\n"),
                Outcome::BadExit => reply.push_str("# Bad exit\n"),
            }
        }
    }
    reply.push_str(".\n");
}

/// The built-in plugin (and wildcard instance) serving `name`, if any.
fn find_builtin(
    node: &Node,
    host: &mut Host,
    name: &str,
) -> Option<(&'static BuiltinPlugin, String)> {
    if name.is_empty() {
        return None;
    }
    let mut netdev_read = false;
    // longest wildcard prefix first: `if_err_eth0` is if_err_, not if_ with "err_eth0"
    let mut candidates: Vec<&&'static BuiltinPlugin> = node.builtins.iter().collect();
    candidates.sort_by_key(|b| std::cmp::Reverse(b.name.len()));
    for b in candidates {
        match b.instances {
            None if b.name == name => return Some((b, String::new())),
            None => {}
            Some(instances) => {
                let Some(inst) = name.strip_prefix(b.name) else {
                    continue;
                };
                if !netdev_read {
                    host.refresh(Needs::NETDEV, &mut |_| {});
                    netdev_read = true;
                }
                if instances(host, &node.filters).iter().any(|i| i == inst) {
                    return Some((b, inst.to_owned()));
                }
            }
        }
    }
    None
}

async fn run_builtin(
    node: &Node,
    s: &mut Session,
    b: &'static BuiltinPlugin,
    instance: &str,
    config: bool,
    reply: &mut String,
) {
    let Some(host) = s.host.as_mut() else { return };
    host.refresh(b.needs, &mut |e| {
        bump(&node.stats.source_errors);
        events::SOURCE_FAILED.log(|suppressed| {
            tracing::warn!(error = %e, suppressed, "cannot read a host metric source");
        });
    });
    if b.needs.has(Needs::MOUNTS) && host.has(Needs::MOUNTS) {
        host.fs = node.fs_probe.stat(df_mounts(&host.mounts)).await;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut ctx = PluginCtx {
        host,
        master_ip: &s.peer_ip,
        state: &node.plugin_state,
        now,
    };
    if config {
        (b.config)(&mut ctx, instance, reply);
        // With dirtyconfig the master skips `fetch` when config carries values (spec §3.6).
        if s.dirtyconfig {
            (b.fetch)(&mut ctx, instance, reply);
        }
    } else {
        (b.fetch)(&mut ctx, instance, reply);
    }
}
