//! Helpers: an agent on 127.0.0.1:0 with the test plugins of the spec's transcripts
//! (shared/spec/munin.md §9) in a scratch plugin directory, and a munin protocol client.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use charcoal_node_agent::{AgentHandle, Config, run};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_util::sync::CancellationToken;

/// Longest wait for any single reply; only guards against a hanging test.
pub const REPLY_DEADLINE: Duration = Duration::from_secs(30);

pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// The test plugins described in spec §9, plus a forking, a binary-garbage and a flooding one.
pub const TEST_PLUGINS: &[(&str, &str)] = &[
    (
        "t_env",
        r##"#!/bin/sh
if [ "$1" = "config" ]; then
  echo "graph_title Test: plugin environment"
  echo "graph_category test"
  echo "env.label one"
fi
echo "# argv0=$0 argc=$# args=$*"
echo "# uid=$(id -u) gid=$(id -g) user=$(id -un)"
echo "# cwd=$(pwd) umask=$(umask)"
echo "# stdin=$(readlink /proc/$$/fd/0)"
echo "# pgid=$(ps -o pgid= $$ | tr -d ' ') pid=$$ sid=$(ps -o sid= $$ | tr -d ' ')"
echo "# groups=$(id -G)"
env | LC_ALL=C sort | sed 's/^/# env /'
[ "$1" = "config" ] || echo "env.value 1"
"##,
    ),
    (
        "t_sleep",
        r##"#!/bin/sh
if [ "$1" = "config" ]; then
  echo "graph_title Test: sleeper"
  echo "graph_category test"
  echo "s.label s"
  exit 0
fi
sleep 300 &
echo $! > "$MUNIN_PLUGSTATE/t_sleep.child"
sleep 300
echo "s.value 1"
"##,
    ),
    (
        "t_fail",
        r##"#!/bin/sh
if [ "$1" = "config" ]; then
  echo "graph_title Test: failing"
  echo "graph_category test"
  echo "f.label f"
  exit 0
fi
echo "f.value 1"
echo "something went wrong" >&2
exit 3
"##,
    ),
    (
        "t_dirty",
        r##"#!/bin/sh
if [ "$1" = "config" ]; then
  echo "graph_title Test: dirtyconfig"
  echo "graph_category test"
  echo "dirty.label dirty"
  echo "dirty.type GAUGE"
  [ "$MUNIN_CAP_DIRTYCONFIG" = "1" ] && echo "dirty.value 7"
  exit 0
fi
echo "dirty.value 7"
"##,
    ),
    (
        "t_multi",
        r##"#!/bin/sh
if [ "$1" = "config" ]; then
  echo "multigraph t_multi"
  echo "graph_title Test: multigraph parent"
  echo "graph_category test"
  echo "total.label total"
  echo "total.type DERIVE"
  echo "total.min 0"
  echo "multigraph t_multi.child1"
  echo "graph_title Test: multigraph child 1"
  echo "graph_category test"
  echo "part.label part"
  exit 0
fi
echo "multigraph t_multi"
echo "total.value 1795760347"
echo "multigraph t_multi.child1"
echo "part.value 3.5"
"##,
    ),
    (
        "t_garbage",
        r##"#!/bin/sh
if [ "$1" = "config" ]; then
  echo "graph_title Test: garbage"
  echo "graph_category test"
  echo "a.label a"
  echo "b.label b"
  echo "c.label c"
  echo "this is not a munin line"
  exit 0
fi
printf 'a.value 1\r\n\r\n\n'
echo "noise on stderr" >&2
printf 'b.value U\n.\njunk line\nc.value 1700000000:5'
"##,
    ),
    (
        "t_virtual",
        r##"#!/bin/sh
if [ "$1" = "config" ]; then
  echo "host_name virtual.example"
  echo "graph_title Test: virtual node"
  echo "graph_category test"
  echo "v.label v"
  exit 0
fi
echo "v.value 5"
"##,
    ),
    (
        "t_fork",
        r##"#!/bin/sh
# Forks a child that keeps stdout open, then exits at once.
if [ "$1" = "config" ]; then
  echo "graph_title Test: forks and exits"
  echo "graph_category test"
  echo "x.label x"
  exit 0
fi
echo "x.value 1"
sleep 300 &
echo $! > "$MUNIN_PLUGSTATE/t_fork.child"
exit 0
"##,
    ),
    (
        "t_binary",
        r##"#!/bin/sh
if [ "$1" = "config" ]; then
  echo "graph_title Test: binary garbage"
  echo "graph_category test"
  echo "y.label y"
  exit 0
fi
printf 'y.value 2\n\377\376\000\001garbage\033[31m\n'
"##,
    ),
    (
        "t_flood",
        r##"#!/bin/sh
if [ "$1" = "config" ]; then
  echo "graph_title Test: endless output"
  echo "graph_category test"
  echo "z.label z"
  exit 0
fi
exec yes z.value 1
"##,
    ),
];

/// plugin-conf.d for the test plugins (spec T32 uses `timeout 2`; 1 s keeps tests short).
pub const TEST_CONF: &str =
    "[t_sleep]\ntimeout 3\n[t_fork]\ntimeout 3\n[t_env]\nenv.CHARCOAL_TEST_VAR hello world\n";

/// A scratch directory with plugins, plugin-conf.d and a state directory.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new(plugins: &[(&str, &str)], conf: &str) -> Scratch {
        let dir = tempfile::tempdir().unwrap();
        // plugins run as `nobody` when the tests run as root: let them in
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let s = Scratch { dir };
        std::fs::create_dir_all(s.plugins()).unwrap();
        std::fs::create_dir_all(s.conf()).unwrap();
        for (name, body) in plugins {
            let p = s.plugins().join(name);
            std::fs::write(&p, body).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::fs::write(s.conf().join("test"), conf).unwrap();
        s
    }

    pub fn plugins(&self) -> PathBuf {
        self.dir.path().join("plugins")
    }

    pub fn conf(&self) -> PathBuf {
        self.dir.path().join("plugin-conf.d")
    }

    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }
}

/// A config reading the captured fixture host and the scratch plugins.
pub fn test_config(s: &Scratch) -> Config {
    Config {
        host_name: Some("vm".into()),
        proc_root: data_dir().join("proc-vm"),
        sys_root: data_dir().join("sys-vm"),
        interfaces_exclude: vec![],
        plugin_dir: Some(s.plugins()),
        plugin_conf_dir: Some(s.conf()),
        plugin_state_dir: s.state(),
        plugin_timeout: Duration::from_secs(20),
        ..Config::default()
    }
}

/// A running agent with its munin server on a free port.
pub struct TestAgent {
    pub addr: SocketAddr,
    pub token: CancellationToken,
    pub handle: AgentHandle,
}

pub async fn start(config: Config) -> TestAgent {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let token = CancellationToken::new();
    let handle = run(config, Some(listener), token.clone()).await.unwrap();
    let addr = handle.munin_addr().unwrap();
    TestAgent {
        addr,
        token,
        handle,
    }
}

impl TestAgent {
    pub async fn stop(self) {
        self.token.cancel();
        tokio::time::timeout(REPLY_DEADLINE, self.handle.join())
            .await
            .expect("agent drains within the deadline");
    }
}

/// A munin protocol client speaking raw lines.
pub struct Client {
    rd: BufReader<OwnedReadHalf>,
    wr: OwnedWriteHalf,
    pub greeting: String,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (rd, wr) = stream.into_split();
        let mut c = Client {
            rd: BufReader::new(rd),
            wr,
            greeting: String::new(),
        };
        c.greeting = c.line().await.expect("greeting");
        c
    }

    pub async fn send(&mut self, line: &str) {
        self.wr.write_all(line.as_bytes()).await.unwrap();
        self.wr.write_all(b"\n").await.unwrap();
    }

    /// One reply line without its LF; `None` at EOF.
    pub async fn line(&mut self) -> Option<String> {
        let mut s = String::new();
        let n = tokio::time::timeout(REPLY_DEADLINE, self.rd.read_line(&mut s))
            .await
            .expect("reply within deadline")
            .unwrap();
        if n == 0 {
            return None;
        }
        assert!(s.ends_with('\n'), "every line ends with LF: {s:?}");
        s.pop();
        Some(s)
    }

    /// Sends `cmd` and reads a single-line reply.
    pub async fn single(&mut self, cmd: &str) -> String {
        self.send(cmd).await;
        self.line().await.expect("single-line reply")
    }

    /// Sends `cmd` and reads a multi-line reply up to the `.` line (not included).
    pub async fn multi(&mut self, cmd: &str) -> Vec<String> {
        self.send(cmd).await;
        let mut out = Vec::new();
        loop {
            let l = self.line().await.expect("multi-line reply");
            if l == "." {
                return out;
            }
            out.push(l);
        }
    }

    /// Whether the node closed the connection (EOF) with no further bytes.
    pub async fn closed(&mut self) -> bool {
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(REPLY_DEADLINE, self.rd.read(&mut buf))
            .await
            .expect("close within deadline")
            .unwrap_or(0);
        n == 0
    }
}

/// A munin value: `-?[0-9.]+(e[+-]?[0-9]+)?|U`, optionally `epoch:` first (spec §9).
pub fn value_shaped(v: &str) -> bool {
    let v = match v.split_once(':') {
        Some((e, rest)) if !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()) => rest,
        _ => v,
    };
    if v == "U" {
        return true;
    }
    let v = v.strip_prefix('-').unwrap_or(v);
    let (m, e) = match v.split_once('e') {
        Some((m, e)) => (m, Some(e)),
        None => (v, None),
    };
    let mant_ok = !m.is_empty() && m.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    let exp_ok = e.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit())
    });
    mant_ok && exp_ok
}
