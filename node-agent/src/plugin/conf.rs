//! plugin-conf.d files (spec §4.6): `[section]` headers and `key value` lines, with
//! munin-node's error recovery (a bad line skips the rest of its file) and wildcard precedence.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// Settings for one plugin (or one wildcard section).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Section {
    /// `user`: name or uid.
    pub(crate) user: Option<String>,
    /// `group`: names or gids; `(name)` marks an optional group.
    pub(crate) groups: Option<Vec<String>>,
    /// `env.NAME value` lines.
    pub(crate) env: BTreeMap<String, String>,
    /// `timeout` in seconds.
    pub(crate) timeout: Option<Duration>,
    /// `command`, split on whitespace; `%c` stands for the normal command line.
    pub(crate) command: Option<Vec<String>>,
    /// `host_name`: the (virtual) node the plugin belongs to.
    pub(crate) host_name: Option<String>,
    /// `update_rate`: passed through (the master uses it), unused by the node.
    pub(crate) update_rate: Option<String>,
}

/// Why a plugin-conf.d line was rejected (the rest of its file is skipped).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum ConfLineError {
    #[error("line {line}: key before the first [section]")]
    BeforeSection { line: usize },
    #[error("line {line}: deprecated `env NAME=value`; write `env.NAME value`")]
    DeprecatedEnv { line: usize },
    #[error("line {line}: not a `key value` line")]
    NotKeyValue { line: usize },
    #[error("line {line}: unknown key {key:?} (should it be `env.{key}`?)")]
    UnknownKey { line: usize, key: String },
    #[error("line {line}: timeout {value:?} is not a number of seconds")]
    BadTimeout { line: usize, value: String },
}

/// All sections read, by section name, in file order of reading.
#[derive(Clone, Debug, Default)]
pub(crate) struct PluginConf {
    sections: BTreeMap<String, Section>,
}

impl PluginConf {
    /// Reads every file of `dir` whose name munin-node would read, in sorted order. Errors are
    /// reported through `on_error` (file and line) and skip the rest of that file.
    pub(crate) fn read_dir(dir: &Path, on_error: &mut dyn FnMut(&Path, &ConfLineError)) -> Self {
        let mut conf = PluginConf::default();
        let Ok(rd) = std::fs::read_dir(dir) else {
            return conf;
        };
        let mut names: Vec<_> = rd
            .flatten()
            .filter_map(|e| e.file_name().to_str().map(str::to_owned))
            .filter(|n| super::dir::conf_file_name_ok(n))
            .collect();
        names.sort();
        for name in names {
            let path = dir.join(&name);
            if !path.is_file() {
                continue;
            }
            let Ok(text) = std::fs::read(&path) else {
                continue;
            };
            let text = String::from_utf8_lossy(&text);
            if let Err(e) = conf.parse(&text) {
                on_error(&path, &e);
            }
        }
        conf
    }

    /// Parses one file into the sections already read; later values override earlier ones.
    pub(crate) fn parse(&mut self, text: &str) -> Result<(), ConfLineError> {
        let mut current: Option<String> = None;
        for (i, raw) in text.lines().enumerate() {
            let line_no = i + 1;
            let line = strip_comment(raw);
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']'))
                && !name.is_empty()
                && !name.contains(']')
            {
                current = Some(name.to_owned());
                self.sections.entry(name.to_owned()).or_default();
                continue;
            }
            let Some(section) = current.as_ref().and_then(|c| self.sections.get_mut(c)) else {
                return Err(ConfLineError::BeforeSection { line: line_no });
            };
            parse_key_line(line, line_no, section)?;
        }
        Ok(())
    }

    /// The settings for `plugin`: its exact section, then wildcard sections (`prefix*`,
    /// `*suffix`) in reverse-sorted order of their names, each key only if still unset.
    pub(crate) fn resolve(&self, plugin: &str) -> Section {
        let mut s = self.sections.get(plugin).cloned().unwrap_or_default();
        for (name, wild) in self.sections.iter().rev() {
            let matches = if let Some(prefix) = name.strip_suffix('*') {
                plugin.starts_with(prefix)
            } else if let Some(suffix) = name.strip_prefix('*') {
                plugin.ends_with(suffix)
            } else {
                false
            };
            if !matches {
                continue;
            }
            for (k, v) in &wild.env {
                s.env.entry(k.clone()).or_insert_with(|| v.clone());
            }
            fill(&mut s.user, &wild.user);
            fill(&mut s.groups, &wild.groups);
            fill(&mut s.timeout, &wild.timeout);
            fill(&mut s.command, &wild.command);
            fill(&mut s.host_name, &wild.host_name);
            fill(&mut s.update_rate, &wild.update_rate);
        }
        s
    }
}

fn fill<T: Clone>(slot: &mut Option<T>, from: &Option<T>) {
    if slot.is_none() {
        slot.clone_from(from);
    }
}

/// Removes a comment: everything from the first `#` not preceded by `\`; then `\#` → `#`.
fn strip_comment(line: &str) -> String {
    let b = line.as_bytes();
    let mut end = b.len();
    for i in 0..b.len() {
        if b[i] == b'#' && (i == 0 || b[i - 1] != b'\\') {
            end = i;
            break;
        }
    }
    line[..end].replace("\\#", "#")
}

fn parse_key_line(line: &str, line_no: usize, s: &mut Section) -> Result<(), ConfLineError> {
    if let Some(rest) = line.strip_prefix("env")
        && rest.starts_with(char::is_whitespace)
        && rest.contains('=')
    {
        return Err(ConfLineError::DeprecatedEnv { line: line_no });
    }
    let Some((key, value)) = line.split_once(|c: char| c.is_ascii_whitespace()) else {
        return Err(ConfLineError::NotKeyValue { line: line_no });
    };
    let value = value.trim();
    if value.is_empty()
        || key.is_empty()
        || !key
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '.')
    {
        return Err(ConfLineError::NotKeyValue { line: line_no });
    }
    match key {
        "user" => s.user = Some(value.to_owned()),
        "group" => {
            s.groups = Some(
                value
                    .split(|c: char| c.is_ascii_whitespace() || c == ',')
                    .filter(|g| !g.is_empty())
                    .map(str::to_owned)
                    .collect(),
            );
        }
        "command" => s.command = Some(value.split_whitespace().map(str::to_owned).collect()),
        "host_name" => s.host_name = Some(value.to_owned()),
        "timeout" => {
            let secs: f64 = value.parse().map_err(|_| ConfLineError::BadTimeout {
                line: line_no,
                value: value.to_owned(),
            })?;
            let t = Duration::try_from_secs_f64(secs).map_err(|_| ConfLineError::BadTimeout {
                line: line_no,
                value: value.to_owned(),
            })?;
            s.timeout = Some(t);
        }
        "update_rate" => s.update_rate = Some(value.to_owned()),
        _ => match key.strip_prefix("env.") {
            Some(name) if !name.is_empty() => {
                s.env.insert(name.to_owned(), value.to_owned());
            }
            _ => {
                return Err(ConfLineError::UnknownKey {
                    line: line_no,
                    key: key.to_owned(),
                });
            }
        },
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(files: &[&str]) -> (PluginConf, Vec<ConfLineError>) {
        let mut c = PluginConf::default();
        let mut errs = Vec::new();
        for f in files {
            if let Err(e) = c.parse(f) {
                errs.push(e);
            }
        }
        (c, errs)
    }

    #[test]
    fn debian_stock_file_precedence() {
        // excerpt of Debian's /etc/munin/plugin-conf.d/munin-node
        let (c, errs) = conf(&[
            "[if_*]\nuser root\n\n[if_err_*]\nuser nobody\n\n[df*]\nenv.warning 92\nenv.critical 98\nenv.exclude_re ^/run/user\n\n[exim_mailqueue]\ngroup adm, (Debian-exim)\n",
        ]);
        assert!(errs.is_empty());
        assert_eq!(c.resolve("if_eth0").user.as_deref(), Some("root"));
        // the greater pattern wins between wildcards
        assert_eq!(c.resolve("if_err_eth0").user.as_deref(), Some("nobody"));
        let df = c.resolve("df_inode");
        assert_eq!(
            df.env.get("exclude_re").map(String::as_str),
            Some("^/run/user")
        );
        assert_eq!(
            c.resolve("exim_mailqueue").groups,
            Some(vec!["adm".to_owned(), "(Debian-exim)".to_owned()])
        );
        assert_eq!(c.resolve("cpu"), Section::default());
    }

    #[test]
    fn exact_beats_wildcard_and_env_merges_per_key() {
        let (c, _) = conf(&[
            "[t_*]\nenv.A wild\nenv.B wild\ntimeout 5\n",
            "[t_one]\nenv.A exact\n",
        ]);
        let s = c.resolve("t_one");
        assert_eq!(s.env.get("A").map(String::as_str), Some("exact"));
        assert_eq!(s.env.get("B").map(String::as_str), Some("wild"));
        assert_eq!(s.timeout, Some(Duration::from_secs(5)));
        let (c, _) = conf(&["[*_one]\nuser u1\n"]);
        assert_eq!(c.resolve("t_one").user.as_deref(), Some("u1"));
    }

    #[test]
    fn later_files_override_and_comments_are_stripped() {
        let (c, _) = conf(&["[p]\nenv.X 1 # comment\nenv.HASH a\\#b\n", "[p]\nenv.X 2\n"]);
        let s = c.resolve("p");
        assert_eq!(s.env.get("X").map(String::as_str), Some("2"));
        assert_eq!(s.env.get("HASH").map(String::as_str), Some("a#b"));
    }

    #[test]
    fn errors_keep_what_was_read_and_skip_the_rest() {
        let (c, errs) = conf(&["[p]\nenv.OK yes\nenv BAD=1\nenv.AFTER no\n"]);
        assert_eq!(errs, vec![ConfLineError::DeprecatedEnv { line: 3 }]);
        let s = c.resolve("p");
        assert!(s.env.contains_key("OK"));
        assert!(!s.env.contains_key("AFTER"));
        let (_, errs) = conf(&["user root\n"]);
        assert_eq!(errs, vec![ConfLineError::BeforeSection { line: 1 }]);
        let (_, errs) = conf(&["[p]\nbogus value\n"]);
        assert!(matches!(errs[0], ConfLineError::UnknownKey { line: 2, .. }));
        let (_, errs) = conf(&["[p]\nlonely\n"]);
        assert_eq!(errs, vec![ConfLineError::NotKeyValue { line: 2 }]);
        let (_, errs) = conf(&["[p]\ntimeout soon\n"]);
        assert!(matches!(errs[0], ConfLineError::BadTimeout { .. }));
    }

    #[test]
    fn command_and_host_name() {
        let (c, _) = conf(&["[p]\ncommand /usr/bin/sudo -u x %c\nhost_name virtual.example\n"]);
        let s = c.resolve("p");
        assert_eq!(
            s.command,
            Some(vec![
                "/usr/bin/sudo".into(),
                "-u".into(),
                "x".into(),
                "%c".into()
            ])
        );
        assert_eq!(s.host_name.as_deref(), Some("virtual.example"));
    }
}
