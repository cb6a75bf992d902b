//! The `charcoal` binary: one process for StatsD, Carbon, the render API and the node agent,
//! plus the whisper file tools. See `charcoal --help`.

mod bench_carbon;
mod bench_statsd;
mod config;
mod handoff;
mod listen;
mod logging;
mod notify;
mod ops;
mod serve;
mod signals;
mod whisper_cli;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::config::Config;
use crate::serve::{Parts, StatsdListen, StatsdSink};

/// mimalloc keeps freed memory for reuse instead of returning it to the kernel at once; the
/// render path allocates and frees large buffers per request, and with glibc's allocator page
/// faults took half of its time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "charcoal",
    version,
    about = "StatsD + Graphite + Munin in one fast binary"
)]
struct Cli {
    /// TOML configuration file; every key can also be set as CHARCOAL_<SECTION>__<KEY>.
    #[arg(long, global = true, env = "CHARCOAL_CONFIG")]
    config: Option<PathBuf>,
    /// Log format on stdout (default: human on a terminal, JSON lines otherwise).
    #[arg(long, global = true, value_enum)]
    log_format: Option<config::LogFormat>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Everything in one process: StatsD, Carbon, the web API and UI, and the node agent
    /// (the default command).
    Serve(ServeArgs),
    /// The StatsD server alone, flushing to a data directory or to a Carbon server.
    Statsd(StatsdArgs),
    /// The store with its Carbon plaintext receiver (TCP and UDP).
    Carbon(CarbonArgs),
    /// The render API and web UI over a data directory.
    Web(WebArgs),
    /// The node agent: host metrics and Munin plugins, sent to StatsD or Carbon.
    Agent(AgentArgs),
    /// Load and validate the configuration, print it with every default, and exit.
    CheckConfig,
    /// Whisper file tools (create, info, fetch, update, dump, resize, fill, merge).
    #[command(subcommand)]
    Whisper(whisper_cli::WhisperCommand),
    /// Load generators (bounded in count and time, loopback targets only).
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Carbon plaintext over TCP: many metrics, several connections.
    Carbon(bench_carbon::BenchCarbonArgs),
    /// StatsD lines over UDP, many lines per datagram.
    Statsd(bench_statsd::BenchStatsdArgs),
}

#[derive(Debug, Default, Args)]
struct ServeArgs {
    /// Directory of whisper files (store.data_dir).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// StatsD UDP address (statsd.listen).
    #[arg(long)]
    statsd_listen: Option<String>,
    /// StatsD admin address (statsd.admin_listen).
    #[arg(long)]
    statsd_admin_listen: Option<String>,
    /// Carbon TCP and UDP address (carbon.listen).
    #[arg(long)]
    carbon_listen: Option<String>,
    /// Web API and UI address (web.listen).
    #[arg(long)]
    web_listen: Option<String>,
    /// munin-node protocol address of the agent (agent.munin_listen; empty disables).
    #[arg(long)]
    munin_listen: Option<String>,
    /// StatsD flush interval, e.g. 10s (statsd.flush_interval).
    #[arg(long, value_parser = charcoal_store::duration_text::parse)]
    flush_interval: Option<std::time::Duration>,
    #[arg(long)]
    no_statsd: bool,
    #[arg(long)]
    no_carbon: bool,
    #[arg(long)]
    no_web: bool,
    #[arg(long)]
    no_agent: bool,
}

#[derive(Debug, Args)]
struct StatsdArgs {
    /// UDP address (statsd.listen).
    #[arg(long)]
    listen: Option<String>,
    /// Admin interface address (statsd.admin_listen).
    #[arg(long)]
    admin_listen: Option<String>,
    /// Flush interval, e.g. 10s (statsd.flush_interval).
    #[arg(long, value_parser = charcoal_store::duration_text::parse)]
    flush_interval: Option<std::time::Duration>,
    /// Flush into this data directory (embedded store).
    #[arg(long, conflicts_with = "carbon")]
    data_dir: Option<PathBuf>,
    /// Flush as Carbon plaintext to HOST:PORT (statsd.carbon).
    #[arg(long)]
    carbon: Option<String>,
    /// Read an Etsy StatsD config file (its JavaScript object literal) as a drop-in.
    #[arg(long)]
    etsy_config: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct CarbonArgs {
    /// Directory of whisper files (store.data_dir).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// TCP and UDP address (carbon.listen; port 0 picks a free one).
    #[arg(long)]
    listen: Option<String>,
}

#[derive(Debug, Args)]
struct WebArgs {
    /// Directory of whisper files (store.data_dir).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// HTTP address (web.listen).
    #[arg(long)]
    listen: Option<String>,
    /// Another Charcoal (or graphite-web) whose metrics this one also serves, as
    /// http://HOST:PORT; repeatable (web.cluster_servers).
    #[arg(long = "cluster-server")]
    cluster_servers: Vec<String>,
}

#[derive(Debug, Args)]
struct AgentArgs {
    /// Send to StatsD at HOST:PORT (gauges) (agent.statsd).
    #[arg(long, conflicts_with = "carbon")]
    statsd: Option<String>,
    /// Send to Carbon at HOST:PORT (plaintext) (agent.carbon).
    #[arg(long)]
    carbon: Option<String>,
    /// Collection interval, e.g. 10s (agent.interval).
    #[arg(long, value_parser = charcoal_store::duration_text::parse)]
    interval: Option<std::time::Duration>,
    /// munin-node protocol address (agent.munin_listen; empty disables).
    #[arg(long)]
    munin_listen: Option<String>,
    /// Munin plugin directory (agent.plugin_dir).
    #[arg(long)]
    plugin_dir: Option<PathBuf>,
    /// Munin plugin-conf.d directory (agent.plugin_conf_dir).
    #[arg(long)]
    plugin_conf_dir: Option<PathBuf>,
    /// Metric name prefix, e.g. servers.web1 (agent.prefix).
    #[arg(long)]
    prefix: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            eprintln!("charcoal: {e:#}");
            if e.downcast_ref::<config::ConfigError>().is_some() || whisper_cli::is_usage_error(&e)
            {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let command = cli.command.unwrap_or(Command::Serve(ServeArgs::default()));
    match command {
        Command::Whisper(command) => return whisper_cli::run(command),
        Command::Bench(BenchCommand::Carbon(args)) => return bench_carbon::run(&args),
        Command::Bench(BenchCommand::Statsd(args)) => return bench_statsd::run(&args),
        _ => {}
    }
    let (config, parts) = configure(cli.config.as_deref(), cli.log_format, &command)?;
    let Some(parts) = parts else {
        print!("{}", toml::to_string(&config)?);
        return Ok(());
    };
    raise_descriptor_limit();
    // SIGHUP builds the configuration again the way start-up did.
    let reread = move || {
        configure(cli.config.as_deref(), cli.log_format, &command).map(|(config, _)| config)
    };
    serve::run(config, parts, Box::new(reread))
}

/// The configuration from the file, the environment and then the subcommand's flags (with
/// `--etsy-config`, that file too), validated; and which parts run (`None` for
/// check-config). Installs the logger the first time.
fn configure(
    path: Option<&std::path::Path>,
    log_format: Option<config::LogFormat>,
    command: &Command,
) -> anyhow::Result<(Config, Option<Parts>)> {
    let mut config = config::load(path, std::env::vars())?;
    if let Some(format) = log_format {
        config.log.format = format;
    }
    logging::init(&config.log);
    let parts = apply_flags(command, &mut config)?;
    config::validate(&config)?;
    Ok((config, parts))
}

/// Applies the subcommand's flags over the configuration and says which parts run (`None`
/// for check-config).
fn apply_flags(command: &Command, config: &mut Config) -> anyhow::Result<Option<Parts>> {
    let statsd_listen = |c: &Config| StatsdListen {
        udp: vec![c.statsd.listen.clone()],
        tcp: if c.statsd.tcp {
            vec![c.statsd.tcp_listen.clone()]
        } else {
            Vec::new()
        },
    };
    let parts = match command {
        Command::Serve(a) => {
            set(&mut config.store.data_dir, &a.data_dir);
            set(&mut config.statsd.listen, &a.statsd_listen);
            set(&mut config.statsd.admin_listen, &a.statsd_admin_listen);
            set(&mut config.carbon.listen, &a.carbon_listen);
            set(&mut config.agent.munin_listen, &a.munin_listen);
            set(&mut config.statsd.flush_interval, &a.flush_interval);
            if let Some(web) = &a.web_listen {
                config.web.listen = listen::resolve(web)
                    .map_err(|e| config::ConfigError(format!("--web-listen: {e}")))?;
            }
            let sink = if config.statsd.carbon.is_empty() {
                StatsdSink::Store
            } else {
                StatsdSink::Carbon(config.statsd.carbon.clone())
            };
            Parts {
                statsd: (!a.no_statsd).then(|| (sink, statsd_listen(config))),
                carbon: !a.no_carbon,
                web: !a.no_web,
                agent: !a.no_agent,
            }
        }
        Command::Statsd(a) => {
            let mut listen = None;
            let mut sink = None;
            if let Some(path) = &a.etsy_config {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("--etsy-config {}", path.display()))?;
                let etsy = charcoal_statsd::parse_etsy_config(&text)
                    .map_err(|e| config::ConfigError(format!("{}: {e}", path.display())))?;
                if let Some(warning) = etsy.warning() {
                    tracing::warn!("{warning}");
                }
                let (udp, tcp) = etsy
                    .listen
                    .iter()
                    .partition::<Vec<_>, _>(|l| l.kind == charcoal_statsd::ListenKind::Udp);
                listen = Some(StatsdListen {
                    udp: udp.iter().map(|l| l.address()).collect(),
                    tcp: tcp.iter().map(|l| l.address()).collect(),
                });
                let keep = config.statsd.clone();
                config.statsd = etsy.statsd;
                config.statsd.admin_listen = etsy.admin;
                config.statsd.workers = keep.workers;
                // The first addresses also go into the config: check-config shows them and a
                // reload sees them change.
                if let Some(first) = udp.first() {
                    config.statsd.listen = first.address();
                }
                if let Some(first) = tcp.first() {
                    config.statsd.tcp = true;
                    config.statsd.tcp_listen = first.address();
                }
                sink = Some(match etsy.graphite {
                    Some(target) => StatsdSink::Carbon(target),
                    None => StatsdSink::Discard,
                });
            }
            set(&mut config.statsd.admin_listen, &a.admin_listen);
            set(&mut config.statsd.flush_interval, &a.flush_interval);
            set(&mut config.statsd.carbon, &a.carbon);
            if let Some(udp) = &a.listen {
                config.statsd.listen = udp.clone();
                listen.get_or_insert_with(StatsdListen::default).udp = vec![udp.clone()];
            }
            if let Some(dir) = &a.data_dir {
                config.store.data_dir = dir.clone();
                sink = Some(StatsdSink::Store);
            } else if let Some(target) = &a.carbon {
                sink = Some(StatsdSink::Carbon(target.clone()));
            }
            let sink = match sink {
                Some(s) => s,
                None if !config.statsd.carbon.is_empty() => {
                    StatsdSink::Carbon(config.statsd.carbon.clone())
                }
                None => StatsdSink::Store,
            };
            Parts {
                statsd: Some((sink, listen.unwrap_or_else(|| statsd_listen(config)))),
                carbon: false,
                web: false,
                agent: false,
            }
        }
        Command::Carbon(a) => {
            set(&mut config.store.data_dir, &a.data_dir);
            set(&mut config.carbon.listen, &a.listen);
            Parts {
                statsd: None,
                carbon: true,
                web: false,
                agent: false,
            }
        }
        Command::Web(a) => {
            set(&mut config.store.data_dir, &a.data_dir);
            if let Some(web) = &a.listen {
                config.web.listen = listen::resolve(web)
                    .map_err(|e| config::ConfigError(format!("--listen: {e}")))?;
            }
            if !a.cluster_servers.is_empty() {
                config.web.cluster_servers = a.cluster_servers.clone();
            }
            Parts {
                statsd: None,
                carbon: false,
                web: true,
                agent: false,
            }
        }
        Command::Agent(a) => {
            if a.statsd.is_some() {
                config.agent.statsd = a.statsd.clone();
                config.agent.carbon = None;
            }
            if a.carbon.is_some() {
                config.agent.carbon = a.carbon.clone();
                config.agent.statsd = None;
            }
            set(&mut config.agent.interval, &a.interval);
            set(&mut config.agent.munin_listen, &a.munin_listen);
            if a.plugin_dir.is_some() {
                config.agent.plugin_dir = a.plugin_dir.clone();
            }
            if a.plugin_conf_dir.is_some() {
                config.agent.plugin_conf_dir = a.plugin_conf_dir.clone();
            }
            set(&mut config.agent.prefix, &a.prefix);
            Parts {
                statsd: None,
                carbon: false,
                web: false,
                agent: true,
            }
        }
        Command::CheckConfig => return Ok(None),
        Command::Whisper(_) | Command::Bench(_) => unreachable!("handled before"),
    };
    Ok(Some(parts))
}

fn set<T: Clone>(target: &mut T, flag: &Option<T>) {
    if let Some(value) = flag {
        *target = value.clone();
    }
}

/// Servers hold many sockets and files: take the hard limit on descriptors, as most daemons
/// do (the soft default of 1024 is for interactive shells).
fn raise_descriptor_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
        && let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
    {
        tracing::warn!(error = %e, soft, hard, "could not raise the open-file limit");
    }
}

/// Output piped into `head` is not an error.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
