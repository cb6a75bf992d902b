//! Munin script plugins: the plugin directory, plugin-conf.d, the start-up `config` probe
//! (spec §2.7) and the runner.

mod conf;
mod dir;
pub(crate) mod output;
mod run;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

pub(crate) use conf::{PluginConf, Section};
pub(crate) use run::{Outcome, Runner, RunnerSettings};

use crate::error::AgentError;
use crate::events;

/// One script plugin that survived the start-up probe.
#[derive(Debug, Clone)]
pub(crate) struct ScriptPlugin {
    /// Name in the plugin directory (the service name).
    pub(crate) name: String,
    /// Its plugin-conf.d settings, wildcards applied.
    pub(crate) section: Section,
    /// The node it belongs to, lower-cased (`host_name` of plugin-conf.d or of its config).
    pub(crate) node: String,
    /// Its config output contains `multigraph` lines.
    pub(crate) multigraph: bool,
    /// It printed values in `config` although dirtyconfig was not announced.
    pub(crate) dirty: bool,
}

/// The script plugins known since start-up, and how to run them.
#[derive(Debug)]
pub(crate) struct Plugins {
    pub(crate) runner: Arc<Runner>,
    /// By name.
    pub(crate) list: BTreeMap<String, ScriptPlugin>,
}

impl Plugins {
    /// No script plugins (no plugin directory configured).
    pub(crate) fn empty(runner: Arc<Runner>) -> Self {
        Plugins {
            runner,
            list: BTreeMap::new(),
        }
    }

    /// Lists the plugin directory, reads plugin-conf.d, and runs every plugin with `config`
    /// (at most `concurrency` at once), keeping those that printed something and did not time
    /// out, like munin-node at start-up. Names in `skip` (enabled built-ins) are left out.
    pub(crate) async fn load(
        runner: Arc<Runner>,
        conf_dir: Option<&Path>,
        concurrency: usize,
        own_node: &str,
        skip: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<Self, AgentError> {
        let names = dir::list_plugins(runner.dir()).map_err(|source| AgentError::PluginDir {
            path: runner.dir().to_owned(),
            source,
        })?;
        let conf = match conf_dir {
            Some(d) => PluginConf::read_dir(d, &mut |path, e| {
                events::PLUGIN_CONF.log(|suppressed| {
                    tracing::warn!(file = %path.display(), error = %e, suppressed, "plugin-conf.d: rest of file skipped");
                });
            }),
            None => PluginConf::default(),
        };
        let permits = Arc::new(Semaphore::new(concurrency.max(1)));
        let mut probes = JoinSet::new();
        for name in names {
            if skip(&name) {
                tracing::info!(plugin = %name, "script plugin shadowed by the built-in of the same name");
                continue;
            }
            let section = conf.resolve(&name);
            let (runner, permits) = (runner.clone(), permits.clone());
            probes.spawn(async move {
                let _permit = permits.acquire_owned().await.ok();
                let outcome = runner.run(&name, &section, Some("config"), "", false).await;
                (name, section, outcome)
            });
        }
        let mut list = BTreeMap::new();
        while let Some(joined) = probes.join_next().await {
            let Ok((name, section, outcome)) = joined else {
                continue;
            };
            let lines = match outcome {
                Outcome::Lines(lines) if !lines.is_empty() => lines,
                Outcome::BadExit => Vec::new(),
                Outcome::Lines(_) | Outcome::TimedOut => {
                    tracing::info!(plugin = %name, outcome = ?outcome_name(&outcome), "plugin dropped: no config output");
                    continue;
                }
            };
            let declared = lines
                .iter()
                .find_map(|l| l.strip_prefix("host_name "))
                .and_then(|h| h.split_whitespace().next());
            let node = section
                .host_name
                .as_deref()
                .or(declared)
                .unwrap_or(own_node)
                .to_lowercase();
            let multigraph = lines
                .iter()
                .any(|l| l.strip_prefix("multigraph").is_some_and(starts_with_space));
            let dirty = lines.iter().any(|l| is_value_line(l));
            list.insert(
                name.clone(),
                ScriptPlugin {
                    name,
                    section,
                    node,
                    multigraph,
                    dirty,
                },
            );
        }
        tracing::info!(plugins = list.len(), "script plugins configured");
        Ok(Plugins { runner, list })
    }
}

fn outcome_name(o: &Outcome) -> &'static str {
    match o {
        Outcome::Lines(_) => "no output",
        Outcome::TimedOut => "timed out",
        Outcome::BadExit => "bad exit",
    }
}

fn starts_with_space(rest: &str) -> bool {
    rest.starts_with(|c: char| c.is_ascii_whitespace())
}

/// `^[A-Za-z0-9_]+\.value ` (munin-node's test for "dirty" plugins).
fn is_value_line(l: &str) -> bool {
    match l.split_once(".value ") {
        Some((field, _)) => {
            !field.is_empty()
                && field
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dirty_lines() {
        assert!(is_value_line("dirty.value 7"));
        assert!(!is_value_line("a.b.value 7"));
        assert!(!is_value_line("graph_title x.value y"));
        assert!(!is_value_line(".value 1"));
    }
}
