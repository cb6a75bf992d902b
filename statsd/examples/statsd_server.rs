//! A minimal StatsD server binary for benchmarks until `charcoal statsd` is wired:
//! `statsd_server --listen 127.0.0.1:8125 --carbon 127.0.0.1:2003 --flush-interval 10s
//! [--workers N] [--admin 127.0.0.1:8126] [--etsy-config FILE]`. Stops on SIGTERM/SIGINT
//! after draining and a final flush.

use std::sync::Arc;

use charcoal_statsd::{CarbonSink, CarbonSinkConfig, Config, Sink, Sockets};
use tokio_util::sync::CancellationToken;

fn main() -> anyhow::Result<()> {
    let mut listen = "127.0.0.1:8125".to_string();
    let mut carbon = None;
    let mut admin = None;
    let mut config = Config::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || {
            args.next()
                .ok_or_else(|| anyhow::anyhow!("{a} needs a value"))
        };
        match a.as_str() {
            "--listen" => listen = val()?,
            "--carbon" => carbon = Some(val()?),
            "--admin" => admin = Some(val()?),
            "--workers" => config.workers = val()?.parse()?,
            "--flush-interval" => config.flush_interval = humantime::parse_duration(&val()?)?,
            "--etsy-config" => {
                let e = charcoal_statsd::parse_etsy_config(&std::fs::read_to_string(val()?)?)?;
                if let Some(w) = e.warning() {
                    eprintln!("{w}");
                }
                if let Some(l) = e.listen.first() {
                    listen = l.address();
                }
                carbon = e.graphite.clone();
                config = e.statsd;
            }
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let udp = charcoal_statsd::bind_udp(
            listen.parse()?,
            config.effective_workers(),
            config.udp_recv_buffer,
        )?;
        let admin = match admin {
            Some(a) => Some(tokio::net::TcpListener::bind(a).await?),
            None => None,
        };
        let mut sinks: Vec<Arc<dyn Sink>> = Vec::new();
        let mut sink_handle = None;
        if let Some(c) = carbon {
            let (sink, h) = CarbonSink::spawn(CarbonSinkConfig::new(c));
            sinks.push(Arc::new(sink));
            sink_handle = Some(h);
        }
        let cancel = CancellationToken::new();
        let server = charcoal_statsd::spawn(
            config,
            Sockets {
                udp,
                tcp: vec![],
                admin,
            },
            sinks,
            cancel.clone(),
        )?;
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        server.shutdown().await?;
        if let Some(h) = sink_handle {
            h.shutdown().await;
        }
        anyhow::Ok(())
    })
}
