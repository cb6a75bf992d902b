//! Uptime from `/proc/uptime` and boot time from `/proc/stat` (spec §6.8).
//!
//! Sent: `system.uptime_seconds`. Munin plugin `uptime`: days with two decimals.

use std::fmt::Write as _;

use super::{BuiltinPlugin, Collector, Emitter, Filters, Host, Needs, PluginCtx};

pub(super) const COLLECTOR: Collector = Collector {
    name: "uptime",
    doc: "system.uptime_seconds: seconds since boot; system.boot_time: boot time (Unix seconds)",
    needs: Needs::UPTIME.union(Needs::STAT),
    emit,
};

fn emit(host: &Host, _: &Filters, e: &mut Emitter<'_>) {
    if host.has(Needs::UPTIME) {
        e.gauge(format_args!("system.uptime_seconds"), host.uptime.seconds);
    }
    if host.has(Needs::STAT)
        && let Some(b) = host.stat.btime
    {
        e.gauge(format_args!("system.boot_time"), b as f64);
    }
}

pub(super) const PLUGIN: BuiltinPlugin = BuiltinPlugin {
    name: "uptime",
    doc: "Uptime in days (stock `uptime` plugin), GAUGE",
    needs: Needs::UPTIME,
    instances: None,
    multigraph: false,
    config,
    fetch,
};

fn config(_: &mut PluginCtx<'_>, _: &str, out: &mut String) {
    // The trailing space after `-l 0` is in the stock plugin's output (transcript T18).
    out.push_str(
        "graph_title Uptime\n\
         graph_args --base 1000 -l 0 \n\
         graph_scale no\n\
         graph_vlabel uptime in days\n\
         graph_category system\n\
         uptime.label uptime\n\
         uptime.draw AREA\n",
    );
}

fn fetch(ctx: &mut PluginCtx<'_>, _: &str, out: &mut String) {
    if ctx.host.has(Needs::UPTIME) {
        let _ = writeln!(out, "uptime.value {:.2}", ctx.host.uptime.seconds / 86400.0);
    }
}
