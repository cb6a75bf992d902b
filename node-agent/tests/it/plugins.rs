//! Script plugins run as munin-node runs them (spec §4), and misbehaving plugins: hung,
//! forking, garbage-printing, flooding, failing. No timing asserts: only outcomes, and the
//! order in which replies arrive.

use std::time::Duration;

use crate::util::*;

fn pid_alive(pid: &str) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())) else {
        return false;
    };
    // a zombie waiting for its reaper is dead too
    let state = stat.rsplit_once(") ").map(|(_, r)| r.chars().next());
    state != Some(Some('Z'))
}

/// Waits (bounded) until the file written by a plugin exists and returns its contents.
async fn read_when_written(path: std::path::PathBuf) -> String {
    for _ in 0..200 {
        if let Ok(s) = std::fs::read_to_string(&path)
            && !s.trim().is_empty()
        {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{} never written", path.display());
}

fn user_state_dir(s: &Scratch) -> std::path::PathBuf {
    let entries: Vec<_> = std::fs::read_dir(s.state())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    entries[0].clone()
}

#[tokio::test]
async fn hung_plugin_is_timed_out_with_its_children_t32() {
    let s = Scratch::new(TEST_PLUGINS, TEST_CONF);
    let agent = start(test_config(&s)).await;
    let mut c = Client::connect(agent.addr).await;
    assert_eq!(c.multi("fetch t_sleep").await, ["# Timed out"]);
    // the session is still usable (T32)
    assert_eq!(
        c.single("version").await,
        "munins node on vm version: 2.0.73"
    );
    // the background `sleep 300` it forked shared its process group and was killed too
    let child = read_when_written(user_state_dir(&s).join("t_sleep.child")).await;
    for _ in 0..100 {
        if !pid_alive(&child) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!pid_alive(&child), "child {child} survived");
    assert!(agent.handle.stats().plugin_timeouts >= 1);
    agent.stop().await;
}

#[tokio::test]
async fn hung_plugin_never_blocks_other_sessions() {
    let s = Scratch::new(TEST_PLUGINS, "[t_sleep]\ntimeout 30\n");
    let agent = start(test_config(&s)).await;
    let addr = agent.addr;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let hung = {
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut c = Client::connect(addr).await;
            let r = c.multi("fetch t_sleep").await;
            let _ = tx.send("hung");
            r
        })
    };
    // make sure the hung request is in flight: its plugin wrote its child's pid
    let child = read_when_written(s.state().join(whoami_state()).join("t_sleep.child")).await;
    let mut c = Client::connect(addr).await;
    assert_eq!(c.multi("fetch t_dirty").await, ["dirty.value 7"]);
    let _ = tx.send("other");
    assert_eq!(
        rx.recv().await,
        Some("other"),
        "the other session answered first"
    );
    // shutting down kills the hung plugin instead of waiting 30 s for its timeout
    agent.stop().await;
    hung.abort();
    for _ in 0..100 {
        if !pid_alive(&child) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !pid_alive(&child),
        "plugin child {child} survived the shutdown"
    );
}

/// The state directory name: `nobody` when the tests run as root, else the current user.
fn whoami_state() -> String {
    if nix_is_root() {
        "nobody".into()
    } else {
        std::env::var("USER").unwrap_or_else(|_| {
            String::from_utf8(
                std::process::Command::new("id")
                    .arg("-un")
                    .output()
                    .unwrap()
                    .stdout,
            )
            .unwrap()
            .trim()
            .to_owned()
        })
    }
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1).map(|e| e == "0"))
        .unwrap_or(false)
}

#[tokio::test]
async fn plugin_that_forks_and_exits_is_timed_out_and_its_child_killed() {
    let s = Scratch::new(TEST_PLUGINS, TEST_CONF);
    let agent = start(test_config(&s)).await;
    let mut c = Client::connect(agent.addr).await;
    // the child keeps stdout open, so the output never ends: munin-node times it out too
    assert_eq!(c.multi("fetch t_fork").await, ["# Timed out"]);
    let child = read_when_written(user_state_dir(&s).join("t_fork.child")).await;
    for _ in 0..100 {
        if !pid_alive(&child) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!pid_alive(&child), "forked child {child} survived");
    assert_eq!(
        c.single("version").await,
        "munins node on vm version: 2.0.73"
    );
    agent.stop().await;
}

#[tokio::test]
async fn binary_garbage_and_floods_are_contained() {
    let s = Scratch::new(TEST_PLUGINS, TEST_CONF);
    let agent = start(test_config(&s)).await;
    let mut c = Client::connect(agent.addr).await;
    let got = c.multi("fetch t_binary").await;
    assert_eq!(got[0], "y.value 2");
    assert_eq!(got.len(), 2);
    // endless output: killed once it passes the output cap, reported as a bad exit
    assert_eq!(c.multi("fetch t_flood").await, ["# Bad exit"]);
    assert_eq!(
        c.single("version").await,
        "munins node on vm version: 2.0.73"
    );
    agent.stop().await;
}

#[tokio::test]
async fn failing_plugin_output_is_discarded_t31() {
    let s = Scratch::new(TEST_PLUGINS, TEST_CONF);
    let agent = start(test_config(&s)).await;
    let mut c = Client::connect(agent.addr).await;
    assert_eq!(c.multi("fetch t_fail").await, ["# Bad exit"]);
    assert_eq!(agent.handle.stats().plugin_failures, 1);
    agent.stop().await;
}

#[tokio::test]
async fn what_a_plugin_sees_t33() {
    let s = Scratch::new(TEST_PLUGINS, TEST_CONF);
    let agent = start(test_config(&s)).await;
    let mut c = Client::connect(agent.addr).await;
    c.single("cap multigraph dirtyconfig").await;
    let got = c.multi("config t_env").await;
    let has = |want: &str| {
        assert!(
            got.iter().any(|l| l == want),
            "missing {want:?} in {got:#?}"
        );
    };
    let plugins = s.plugins();
    let user = whoami_state();
    let plugstate = s.state().join(&user);
    has("graph_title Test: plugin environment");
    has(&format!(
        "# argv0={}/t_env argc=1 args=config",
        plugins.display()
    ));
    // munin-node's umask, whatever the agent's.
    has("# cwd=/ umask=0002");
    has("# stdin=/dev/null");
    has("# env CHARCOAL_TEST_VAR=hello world");
    has("# env FQDN=vm");
    has("# env LANG=C");
    has("# env LC_ALL=C");
    has("# env MUNIN_CAP_DIRTYCONFIG=1");
    has("# env MUNIN_CAP_MULTIGRAPH=1");
    has("# env MUNIN_LIBDIR=/usr/share/munin");
    has("# env MUNIN_MASTER_IP=127.0.0.1");
    has(&format!("# env MUNIN_PLUGSTATE={}", plugstate.display()));
    has(&format!(
        "# env MUNIN_STATEFILE={}/t_env-127.0.0.1",
        plugstate.display()
    ));
    has("# env MUNIN_VERSION=2.0.73");
    has("# env PATH=/usr/sbin:/usr/bin:/sbin:/bin");
    has("# env PYTHONIOENCODING=utf8:replace");
    if nix_is_root() {
        assert!(
            got.iter().any(|l| l.starts_with("# uid=65534 ")),
            "{got:#?}"
        );
    }
    // its own session, and so its own process group
    let ids = got.iter().find(|l| l.starts_with("# pgid=")).unwrap();
    let (pgid, rest) = ids
        .strip_prefix("# pgid=")
        .unwrap()
        .split_once(" pid=")
        .unwrap();
    let (pid, sid) = rest.split_once(" sid=").unwrap();
    assert_eq!(pgid, pid, "{ids}");
    assert_eq!(sid, pid, "{ids}");
    // fetch: no argument; no dirtyconfig without cap in a fresh session
    let mut c = Client::connect(agent.addr).await;
    let got = c.multi("fetch t_env").await;
    assert!(got.iter().any(|l| l.ends_with("argc=0 args=")), "{got:#?}");
    assert!(!got.iter().any(|l| l.contains("MUNIN_CAP_DIRTYCONFIG")));
    agent.stop().await;
}

/// A group's id from /etc/group.
fn gid_of(name: &str) -> Option<String> {
    std::fs::read_to_string("/etc/group")
        .unwrap()
        .lines()
        .find_map(|l| {
            let mut f = l.split(':');
            (f.next() == Some(name)).then(|| f.nth(1).map(str::to_owned))?
        })
}

#[tokio::test]
async fn plugin_groups_primary_and_supplementary_as_munin_node() {
    // A missing "(optional)" group is skipped; the first existing one is the primary group
    // and every listed one is a supplementary group.
    let conf = "[t_env]\nuser nobody\ngroup (no-such-group), nogroup, daemon\n";
    let s = Scratch::new(TEST_PLUGINS, conf);
    let agent = start(test_config(&s)).await;
    let mut c = Client::connect(agent.addr).await;
    let got = c.multi("fetch t_env").await;
    if nix_is_root() {
        let (nogroup, daemon) = (gid_of("nogroup").unwrap(), gid_of("daemon").unwrap());
        let ids = got.iter().find(|l| l.starts_with("# uid=")).unwrap();
        assert!(
            ids.starts_with(&format!("# uid=65534 gid={nogroup} ")),
            "{ids}"
        );
        let groups = got.iter().find(|l| l.starts_with("# groups=")).unwrap();
        let mut listed: Vec<&str> = groups["# groups=".len()..].split(' ').collect();
        listed.sort_unstable();
        let mut want = vec![nogroup.as_str(), daemon.as_str()];
        want.sort_unstable();
        assert_eq!(listed, want, "{groups}");
    } else {
        // Without root the plugin runs as the agent's user, with munin-node's warning.
        assert!(
            got.iter()
                .any(|l| l.starts_with("# Warning: Root privileges are required")),
            "{got:#?}"
        );
    }
    agent.stop().await;
}

#[tokio::test]
async fn plugins_that_print_nothing_are_dropped_at_start_up() {
    let quiet = [
        ("quiet", "#!/bin/sh\nexit 0\n"),
        (
            "ok",
            "#!/bin/sh\n[ \"$1\" = config ] && echo 'graph_title ok' && exit 0\necho 'a.value 1'\n",
        ),
        ("badconf", "#!/bin/sh\nexit 1\n"),
    ];
    let s = Scratch::new(&quiet, "");
    let agent = start(test_config(&s)).await;
    let mut c = Client::connect(agent.addr).await;
    let list = c.single("list").await;
    let names: Vec<&str> = list.split(' ').collect();
    assert!(names.contains(&"ok"));
    // munin-node keeps a plugin whose config run exits non-zero, and drops a silent one
    assert!(names.contains(&"badconf"));
    assert!(!names.contains(&"quiet"));
    agent.stop().await;
}

#[tokio::test]
async fn rescan_serves_added_plugins_and_forgets_removed_ones() {
    let plugin = |v: u32| {
        format!(
            "#!/bin/sh\n[ \"$1\" = config ] && echo 'graph_title p' && exit 0\necho 'p.value {v}'\n"
        )
    };
    let s = Scratch::new(&[("old", &plugin(1))], "");
    let agent = start(test_config(&s)).await;
    let mut c = Client::connect(agent.addr).await;
    assert_eq!(c.multi("fetch old").await, ["p.value 1"]);

    std::fs::remove_file(s.plugins().join("old")).unwrap();
    let added = s.plugins().join("added");
    std::fs::write(&added, plugin(2)).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&added, std::fs::Permissions::from_mode(0o755)).unwrap();
    // Until asked, the agent keeps the list it probed at start-up.
    assert_eq!(c.multi("fetch added").await, ["# Unknown service"]);
    agent.handle.rescan_plugins();
    let deadline = tokio::time::Instant::now() + REPLY_DEADLINE;
    loop {
        let names: Vec<String> = c
            .single("list")
            .await
            .split(' ')
            .map(str::to_owned)
            .collect();
        if names.iter().any(|n| n == "added") {
            assert!(!names.iter().any(|n| n == "old"), "{names:?}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "rescan never finished: {names:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // The open session sees the new list.
    assert_eq!(c.multi("fetch added").await, ["p.value 2"]);
    assert_eq!(c.multi("fetch old").await, ["# Unknown service"]);
    agent.stop().await;
}

#[tokio::test]
async fn wildcard_symlink_and_command_with_percent_c() {
    let s = Scratch::new(
        &[(
            "wrapped",
            "#!/bin/sh\n[ \"$1\" = config ] && echo 'graph_title w' && exit 0\necho \"w.value ${WRAPPED:-0}\"\n",
        )],
        "[sym_*]\nenv.FROM_WILDCARD yes\n[wrapped]\ncommand /usr/bin/env WRAPPED=1 %c\n",
    );
    // a wildcard plugin reads its parameter from argv[0], the symlink's path
    let target = s.dir.path().join("sym_");
    std::fs::write(
        &target,
        "#!/bin/sh\n[ \"$1\" = config ] && echo 'graph_title x' && exit 0\necho \"arg.value ${0##*sym_}\"\necho \"w.value ${FROM_WILDCARD:-no}\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink(&target, s.plugins().join("sym_42")).unwrap();
    let agent = start(test_config(&s)).await;
    let mut c = Client::connect(agent.addr).await;
    assert_eq!(
        c.multi("fetch sym_42").await,
        ["arg.value 42", "w.value yes"]
    );
    // `command` with %c: the normal command line wrapped by another program
    assert_eq!(c.multi("fetch wrapped").await, ["w.value 1"]);
    // names outside the list never reach the file system
    assert_eq!(
        c.multi("fetch ../plugins/sym_42").await,
        ["# Unknown service"]
    );
    assert_eq!(c.multi("fetch sym_").await, ["# Unknown service"]);
    agent.stop().await;
}

#[tokio::test]
async fn builtins_shadow_scripts_of_the_same_name_unless_excluded_or_disabled() {
    let script = "#!/bin/sh\n[ \"$1\" = config ] && echo 'graph_title script' && exit 0\necho 'script.value 1'\n";
    let s = Scratch::new(&[("cpu", script), ("if_lo", script), ("load", script)], "");
    let mut config = test_config(&s);
    config.interfaces_exclude = vec!["lo".into()];
    config.disabled_builtin_plugins = vec!["load".into()];
    let agent = start(config).await;
    let mut c = Client::connect(agent.addr).await;
    // the built-in cpu (fixture values), not the script
    assert_eq!(c.multi("fetch cpu").await[0], "user.value 6408");
    // lo is excluded from the built-in if_ plugins, so the script serves if_lo
    assert_eq!(c.multi("fetch if_lo").await, ["script.value 1"]);
    // a disabled built-in gives way to the script
    assert_eq!(c.multi("fetch load").await, ["script.value 1"]);
    agent.stop().await;
}

#[tokio::test]
async fn builtins_answer_while_a_slow_plugin_is_still_probed_at_start_up() {
    let slow = "#!/bin/sh\nsleep 300\n";
    let s = Scratch::new(&[("t_slowconf", slow)], "");
    let agent = start(test_config(&s)).await;
    let mut c = Client::connect(agent.addr).await;
    // the probe of t_slowconf runs for up to plugin_timeout (20 s); built-ins do not wait
    assert_eq!(c.multi("fetch load").await, ["load.value 0.16"]);
    // stopping kills the probe instead of waiting for its timeout
    agent.stop().await;
}
