//! The admin TCP interface (Etsy's management console, spec §13): each received chunk is one
//! command; replies byte for byte as the reference writes them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::aggregate::{Aggregator, round_secs};
use crate::inspect;
use crate::jsnum::{js_number_string, js_trim};
use crate::parser::Kind;
use crate::stats::Stats;

/// State the admin commands read and change.
#[derive(Debug)]
pub(crate) struct Admin {
    pub(crate) agg: Arc<Aggregator>,
    pub(crate) healthy: AtomicBool,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Admin {
    /// The reply to one command chunk; `None` means close the connection (`quit`).
    pub(crate) fn command(&self, chunk: &str, now_ms: i64) -> Option<String> {
        let line = js_trim(chunk);
        let mut words = line.split(' ');
        let cmd = words.next().unwrap_or("");
        let params: Vec<&str> = words.collect();
        let agg = &self.agg;
        let reply = match cmd {
            "help" => "Commands: stats, counters, timers, gauges, delcounters, deltimers, delgauges, health, config, quit\n\n".to_string(),
            "config" => self.config_dump(),
            "health" => {
                if let Some(p) = params.first() {
                    match p.to_lowercase().as_str() {
                        "up" => self.healthy.store(true, Ordering::Relaxed),
                        "down" => self.healthy.store(false, Ordering::Relaxed),
                        _ => {}
                    }
                }
                let h = if self.healthy.load(Ordering::Relaxed) { "up" } else { "down" };
                format!("health: {h}\n")
            }
            "stats" => {
                let now = round_secs(now_ms);
                let st = agg.stats();
                let (last_flush, last_exception, flush_time, flush_length) = agg.graphite_status();
                let last_msg = match st.last_msg_seen.load(Ordering::Relaxed) {
                    0 => agg.start_time(),
                    t => t,
                };
                format!(
                    "uptime: {}\nmessages.last_msg_seen: {}\nmessages.bad_lines_seen: {}\ngraphite.last_flush: {}\ngraphite.last_exception: {}\ngraphite.flush_time: {}\ngraphite.flush_length: {}\nEND\n\n",
                    now - agg.start_time(),
                    now - last_msg,
                    Stats::get(&st.bad_lines),
                    now - last_flush,
                    now - last_exception,
                    js_number_string(flush_time),
                    flush_length,
                )
            }
            "counters" => format!("{}\nEND\n\n", inspect::object_of_numbers(&agg.dump_counters())),
            "timers" => format!("{}\nEND\n\n", inspect::object_of_arrays(&agg.dump_timers())),
            "gauges" => format!("{}\nEND\n\n", inspect::object_of_numbers(&agg.dump_gauges())),
            "delcounters" => agg.delete(Kind::Counter, &params),
            "deltimers" => agg.delete(Kind::Timer, &params),
            "delgauges" => agg.delete(Kind::Gauge, &params),
            "quit" => return None,
            _ => "ERROR\n".to_string(),
        };
        Some(reply)
    }

    fn config_dump(&self) -> String {
        let c = self.agg.config();
        let mut s = String::from("\n");
        let thresholds: Vec<String> = c
            .percent_threshold
            .iter()
            .map(|p| js_number_string(*p))
            .collect();
        s.push_str(&format!(
            "flushInterval: {}\n",
            c.flush_interval.as_millis()
        ));
        for (i, t) in thresholds.iter().enumerate() {
            s.push_str(&format!("percentThreshold > {i}: {t}\n"));
        }
        s.push_str(&format!("prefixStats: {}\n", c.prefix_stats));
        s.push_str(&format!("keyNameSanitize: {}\n", c.key_name_sanitize));
        s.push_str(&format!("deleteIdleStats: {}\n", c.delete_idle_stats));
        s.push_str(&format!("flush_counts: {}\n", c.flush_counts));
        s.push_str(&format!(
            "graphite > legacyNamespace: {}\n",
            c.legacy_namespace
        ));
        s.push_str(&format!("graphite > globalPrefix: {}\n", c.global_prefix));
        if let Some(sfx) = &c.global_suffix {
            s.push_str(&format!("graphite > globalSuffix: {sfx}\n"));
        }
        s
    }
}

async fn serve_conn(mut stream: TcpStream, admin: Arc<Admin>, cancel: CancellationToken) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = tokio::select! {
            r = stream.read(&mut buf) => r,
            _ = cancel.cancelled() => break,
        };
        let n = match n {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        // Node's `ascii` decoding: clear the high bit.
        let chunk: String = buf[..n].iter().map(|&b| char::from(b & 0x7f)).collect();
        let admin2 = Arc::clone(&admin);
        let reply = tokio::task::spawn_blocking(move || admin2.command(&chunk, now_ms())).await;
        match reply {
            Ok(Some(r)) => {
                if stream.write_all(r.as_bytes()).await.is_err() {
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => {
                tracing::error!(error = %e, "statsd: admin command failed");
                break;
            }
        }
    }
    let _ = stream.shutdown().await;
}

pub(crate) async fn run(
    listener: TcpListener,
    admin: Arc<Admin>,
    cancel: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = cancel.cancelled() => break,
        };
        match accepted {
            Ok((s, _)) => {
                tracker.spawn(serve_conn(s, Arc::clone(&admin), cancel.clone()));
            }
            Err(e) => tracing::warn!(error = %e, "statsd: admin accept failed"),
        }
    }
}
