//! Load average from `/proc/loadavg` (spec §6.6).
//!
//! Sent: `load.load1`, `load.load5`, `load.load15`. Munin plugin `load`: the 5-minute value.

use std::fmt::Write as _;

use super::{BuiltinPlugin, Collector, Emitter, Filters, Host, Needs, PluginCtx};

pub(super) const COLLECTOR: Collector = Collector {
    name: "load",
    doc: "load.load1, load.load5, load.load15: load averages",
    needs: Needs::LOADAVG,
    emit,
};

fn emit(host: &Host, _: &Filters, e: &mut Emitter<'_>) {
    if !host.has(Needs::LOADAVG) {
        return;
    }
    let [l1, l5, l15] = host.loadavg.load;
    e.gauge(format_args!("load.load1"), l1);
    e.gauge(format_args!("load.load5"), l5);
    e.gauge(format_args!("load.load15"), l15);
}

pub(super) const PLUGIN: BuiltinPlugin = BuiltinPlugin {
    name: "load",
    doc: "Load average (stock `load` plugin): 5-minute load, GAUGE",
    needs: Needs::LOADAVG,
    instances: None,
    multigraph: false,
    config,
    fetch,
};

fn config(_: &mut PluginCtx<'_>, _: &str, out: &mut String) {
    out.push_str(
        "graph_title Load average\n\
         graph_args --base 1000 -l 0\n\
         graph_vlabel load\n\
         graph_scale no\n\
         graph_category system\n\
         load.label load\n\
         graph_info The load average of the machine describes how many processes are in the run-queue (scheduled to run \"immediately\").\n\
         load.info 5 minute load average\n",
    );
}

fn fetch(ctx: &mut PluginCtx<'_>, _: &str, out: &mut String) {
    if ctx.host.has(Needs::LOADAVG) {
        // The stock plugin relays the kernel's text (`cut -f2 -d' '`), e.g. `0.20`.
        let _ = writeln!(out, "load.value {}", ctx.host.loadavg.five_text);
    }
}
