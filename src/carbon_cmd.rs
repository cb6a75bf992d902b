//! `charcoal carbon`: the store with its Carbon receiver, alone.

use std::path::PathBuf;

use anyhow::{Context, Result};
use charcoal_store::{CarbonReceiver, Store};
use clap::Args;
use tokio_util::sync::CancellationToken;

use crate::config::{self, Config};
use crate::signals::{Event, Signals};

#[derive(Debug, Args)]
pub struct CarbonArgs {
    /// Directory of whisper files (overrides `store.data_dir`).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// TCP and UDP address, HOST:PORT (overrides `carbon.listen`; port 0 picks a free one).
    #[arg(long)]
    listen: Option<String>,
}

impl CarbonArgs {
    pub fn apply(&self, config: &mut Config) {
        if let Some(dir) = &self.data_dir {
            config.store.data_dir = dir.clone();
        }
        if let Some(listen) = &self.listen {
            config.carbon.listen = listen.clone();
        }
    }
}

pub fn run(config: Config, config_path: Option<PathBuf>) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("charcoal-io")
        .build()?;
    runtime.block_on(serve(config, config_path))
}

async fn serve(config: Config, config_path: Option<PathBuf>) -> Result<()> {
    let mut signals = Signals::install()?;
    let rules = config::storage_rules(&config.store)?;
    let store = Store::open(&config.store, rules)
        .with_context(|| format!("opening {}", config.store.data_dir.display()))?;
    let (tcp, udp) = crate::listen::tcp_and_udp(&config.carbon.listen, config.carbon.udp)?;
    tracing::info!(
        tcp = %tcp.local_addr()?,
        udp = ?udp.as_ref().and_then(|u| u.local_addr().ok()),
        data_dir = %config.store.data_dir.display(),
        "carbon receiver listening"
    );
    let token = CancellationToken::new();
    let receiver =
        CarbonReceiver::start(store.clone(), Some(tcp), udp, &config.carbon, token.clone());
    loop {
        match signals.next().await {
            Event::Stop => break,
            Event::Reload => reload(&store, &config, config_path.as_deref()),
        }
    }
    tracing::info!("stopping: draining sockets and writing the cache");
    signals.force_exit_on_second();
    let started = std::time::Instant::now();
    receiver.shutdown().await;
    let closing = store.clone();
    tokio::task::spawn_blocking(move || closing.close()).await?;
    tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, "stopped");
    Ok(())
}

/// SIGHUP: re-reads the config file and the storage rules; a bad file keeps the old rules.
fn reload(store: &Store, current: &Config, path: Option<&std::path::Path>) {
    let loaded = config::load(path, std::env::vars()).and_then(|mut c| {
        // Flags and the data directory cannot change live; only the rules for new files do.
        c.store.data_dir = current.store.data_dir.clone();
        config::validate(&c)?;
        Ok(c)
    });
    match loaded.and_then(|c| config::storage_rules(&c.store)) {
        Ok(rules) => {
            store.set_rules(rules);
            tracing::info!("reloaded storage rules");
        }
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "reload refused; keeping the old configuration")
        }
    }
}
