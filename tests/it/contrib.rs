//! The files in `contrib/` that operators copy: the example configuration must load, must
//! document every key `charcoal check-config` knows (so it cannot go stale when a key is
//! added), and its storage rules must give StatsD's output the rollups Etsy's StatsD
//! documentation recommends (`docs/graphite.md`: lower → min, upper → max, sum and count →
//! sum, `stats_counts` → sum, everything else averaged).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{Server, charcoal, path_str};

fn contrib(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("contrib")
        .join(file)
}

/// `charcoal check-config` with no configuration from the caller's environment.
fn check_config() -> Command {
    let mut command = charcoal();
    command.arg("check-config").env_remove("CHARCOAL_CONFIG");
    for (key, _) in std::env::vars() {
        if key.starts_with("CHARCOAL_") && key.contains("__") {
            command.env_remove(key);
        }
    }
    command
}

/// The example names the Debian package's rule files in /etc; point at the ones in contrib/.
fn with_contrib_rules(command: &mut Command) -> &mut Command {
    command
        .env("CHARCOAL_STORE__SCHEMAS", contrib("storage-schemas.conf"))
        .env(
            "CHARCOAL_STORE__AGGREGATION",
            contrib("storage-aggregation.conf"),
        )
}

/// Runs the command, expecting success; returns stdout without log lines (JSON objects).
fn printed_config(command: &mut Command) -> toml::Table {
    // Logs are JSON lines here (stdout is not a terminal); `--log-format` would change the
    // printed `[log] format`.
    let out = command.output().expect("run charcoal");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "check-config failed ({}): {}{stdout}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let logs: Vec<&str> = stdout.lines().filter(|l| l.starts_with('{')).collect();
    assert!(
        logs.iter().all(|l| !l.contains("\"level\":\"WARN\"")),
        "warnings while loading: {logs:?}"
    );
    let text: Vec<&str> = stdout.lines().filter(|l| !l.starts_with('{')).collect();
    text.join("\n")
        .parse()
        .unwrap_or_else(|e| panic!("check-config printed no TOML ({e}): {stdout}"))
}

/// `(section, key)` → value of every key in a printed configuration; a nested table (such
/// as `[agent.plugin_env]`) counts as one key of its section.
fn keys(config: &toml::Table) -> BTreeMap<(String, String), toml::Value> {
    let mut out = BTreeMap::new();
    for (section, table) in config {
        let table = table
            .as_table()
            .unwrap_or_else(|| panic!("[{section}] is not a section"));
        for (key, value) in table {
            out.insert((section.clone(), key.clone()), value.clone());
        }
    }
    out
}

/// One setting of the example file.
#[derive(Debug)]
struct Setting {
    /// `#key = value`: shows the default; `key = value`: an active production choice.
    commented: bool,
    /// The value as written.
    value: String,
    /// The prose comment lines right above it.
    comment: Vec<String>,
    line: usize,
}

/// Reads the example's settings by the conventions its header states: `#key = value` is a
/// commented-out default, `key = value` an active setting, `# text` prose.
fn example_settings(text: &str) -> BTreeMap<(String, String), Setting> {
    let mut settings = BTreeMap::new();
    let mut section = String::new();
    let mut comment = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end();
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = header.to_owned();
            comment.clear();
            continue;
        }
        if line.is_empty() {
            comment.clear();
            continue;
        }
        if let Some(prose) = line.strip_prefix("# ") {
            comment.push(prose.to_owned());
            continue;
        }
        if line == "#" {
            continue;
        }
        let (commented, assignment) = match line.strip_prefix('#') {
            Some(rest) => (true, rest),
            None => (false, line),
        };
        let (key, value) = assignment
            .split_once(" = ")
            .unwrap_or_else(|| panic!("line {}: neither a setting nor prose: {line}", i + 1));
        assert!(
            !key.is_empty()
                && key
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "line {}: bad key in {line:?} (prose comments start with \"# \")",
            i + 1
        );
        assert!(
            !section.is_empty(),
            "line {}: setting before a section",
            i + 1
        );
        let previous = settings.insert(
            (section.clone(), key.to_owned()),
            Setting {
                commented,
                value: value.to_owned(),
                comment: comment.clone(),
                line: i + 1,
            },
        );
        assert!(
            previous.is_none(),
            "line {}: [{section}] {key} given twice",
            i + 1
        );
    }
    settings
}

fn parse_value(text: &str) -> toml::Value {
    let mut table: toml::Table = format!("v = {text}")
        .parse()
        .unwrap_or_else(|e| panic!("{text:?} is not a TOML value: {e}"));
    table.remove("v").expect("the value")
}

/// Equality of TOML values where `90` and `90.0` are the same number.
fn same(a: &toml::Value, b: &toml::Value) -> bool {
    use toml::Value::{Array, Float, Integer, Table};
    match (a, b) {
        (Integer(x), Float(y)) | (Float(y), Integer(x)) => *x as f64 == *y,
        (Array(x), Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b)),
        (Table(x), Table(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|other| same(v, other)))
        }
        _ => a == b,
    }
}

#[test]
fn check_config_accepts_the_example() {
    let mut command = check_config();
    with_contrib_rules(&mut command)
        .arg("--config")
        .arg(contrib("charcoal.toml"));
    let config = printed_config(&mut command);
    let store = config["store"].as_table().expect("[store]");
    assert_eq!(
        store["data_dir"].as_str(),
        Some("/var/lib/charcoal/whisper")
    );
    assert_eq!(
        store["default_retention"].as_str(),
        Some("10s:6h,1m:7d,10m:5y")
    );
}

#[test]
fn the_example_documents_every_key_with_its_default() {
    let defaults = keys(&printed_config(&mut check_config()));
    let text = std::fs::read_to_string(contrib("charcoal.toml")).unwrap();
    let settings = example_settings(&text);
    let mut problems = Vec::new();
    for ((section, key), default) in &defaults {
        let Some(setting) = settings.get(&(section.clone(), key.clone())) else {
            problems.push(format!("[{section}] {key} (default {default}) is missing"));
            continue;
        };
        let value = parse_value(&setting.value);
        if setting.commented {
            if !same(&value, default) {
                problems.push(format!(
                    "line {}: #{key} = {} but the default is {default}",
                    setting.line, setting.value
                ));
            }
        } else if !same(&value, default) {
            // An active production choice names the default it replaces.
            let named = setting.comment.iter().any(|c| {
                c.strip_prefix("Default: ")
                    .is_some_and(|d| same(&parse_value(d), default))
            });
            if !named {
                problems.push(format!(
                    "line {}: {key} is set; its comment needs \"# Default: {default}\"",
                    setting.line
                ));
            }
        }
        if setting.comment.is_empty() {
            problems.push(format!("line {}: {key} has no comment", setting.line));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Keys without a default (unset options) appear as commented examples; each must be a real
/// key taking the example value: the binary is run with it set from the environment.
#[test]
fn the_examples_of_unset_keys_are_accepted() {
    let defaults = keys(&printed_config(&mut check_config()));
    let text = std::fs::read_to_string(contrib("charcoal.toml")).unwrap();
    let mut optional = 0;
    for ((section, key), setting) in example_settings(&text) {
        // Active settings are checked by loading the file (unknown keys are refused).
        if !setting.commented || defaults.contains_key(&(section.clone(), key.clone())) {
            continue;
        }
        optional += 1;
        let variable = format!(
            "CHARCOAL_{}__{}",
            section.to_ascii_uppercase(),
            key.to_ascii_uppercase()
        );
        let expected = parse_value(&setting.value);
        let raw = match &expected {
            toml::Value::String(s) => s.clone(),
            _ => setting.value.clone(),
        };
        let mut command = check_config();
        with_contrib_rules(&mut command).env(&variable, &raw);
        let printed = keys(&printed_config(&mut command));
        let got = printed.get(&(section.clone(), key.clone()));
        assert!(
            got.is_some_and(|v| same(v, &expected)),
            "{variable}={raw}: check-config printed {got:?}"
        );
    }
    // statsd: global_suffix, delete_{counters,timers,gauges,sets}; agent: host_name, statsd,
    // carbon, plugin_dir, plugin_conf_dir. A sanity check that the scan found them.
    assert!(optional >= 10, "only {optional} unset keys found");
}

/// The example rules, used by `charcoal carbon`, on names StatsD writes.
#[test]
fn the_example_rules_roll_statsd_output_up_as_etsy_recommends() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(
        &[
            "carbon",
            "--config",
            path_str(&contrib("charcoal.toml")),
            "--data-dir",
            path_str(&data),
            "--listen",
            "127.0.0.1:0",
        ],
        &[
            (
                "CHARCOAL_STORE__SCHEMAS",
                path_str(&contrib("storage-schemas.conf")),
            ),
            (
                "CHARCOAL_STORE__AGGREGATION",
                path_str(&contrib("storage-aggregation.conf")),
            ),
        ],
    );
    let addr = crate::support::address(&server.wait_for("carbon receiver listening"), "tcp");
    // (metric, aggregation method, xFilesFactor, finest step): methods and factors from
    // Etsy's docs/graphite.md; the 10 s step matches StatsD's default flush interval.
    let expected: &[(&str, &str, f64, u64)] = &[
        ("stats.timers.api.get.lower", "min", 0.1, 10),
        ("stats.timers.api.get.upper", "max", 0.1, 10),
        ("stats.timers.api.get.upper_90", "max", 0.1, 10),
        ("stats.timers.api.get.upper_99_9", "max", 0.1, 10),
        ("stats.timers.api.get.sum", "sum", 0.0, 10),
        ("stats.timers.api.get.sum_90", "sum", 0.0, 10),
        ("stats.timers.api.get.count", "sum", 0.0, 10),
        ("stats.timers.api.get.count_ps", "average", 0.3, 10),
        ("stats.timers.api.get.mean_90", "average", 0.3, 10),
        ("stats_counts.api.hits", "sum", 0.0, 10),
        ("stats.api.hits", "average", 0.3, 10),
        ("stats.gauges.queue.depth", "average", 0.3, 10),
        ("stats.counters.api.hits.count", "sum", 0.0, 10),
        ("stats.sets.api.users.count", "sum", 0.0, 10),
        ("servers.web1.load.load1", "average", 0.3, 10),
        ("carbon.agents.web1-a.metricsReceived", "average", 0.3, 60),
    ];
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    for (name, ..) in expected {
        writeln!(conn, "{name} 1 {now}").unwrap();
    }
    drop(conn);
    let files: Vec<PathBuf> = expected
        .iter()
        .map(|(name, ..)| data.join(format!("{}.wsp", name.replace('.', "/"))))
        .collect();
    // The cache writes within store.flush_interval (1 s); SIGTERM once every point arrived.
    for _ in 0..500 {
        if files.iter().all(|f| f.exists()) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    server.signal(libc::SIGTERM);
    assert!(server.wait().success());
    for ((name, method, xff, step), path) in expected.iter().zip(&files) {
        let out = crate::support::run_ok(&["whisper", "info", path_str(path), "--json"]);
        let info: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(info["aggregationMethod"], *method, "{name}");
        let got = info["xFilesFactor"].as_f64().unwrap();
        assert!((got - xff).abs() < 1e-6, "{name}: xFilesFactor {got}");
        assert_eq!(info["archives"][0]["secondsPerPoint"], *step, "{name}");
    }
}
