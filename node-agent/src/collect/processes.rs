//! Processes per state and threads, from one scan of `/proc/<pid>/stat` (spec §6.7).
//!
//! Sent: `processes.total`, `processes.threads`, and per state `processes.runnable`,
//! `.sleeping`, `.uninterruptible`, `.zombie`, `.stopped`, `.idle`, `.dead`, `.paging`.
//! Munin plugins `processes` and `threads`. The scan costs one open/read per process, so on
//! hosts with many thousands of processes leave `processes` out of `collectors`.

use std::fmt::Write as _;

use super::{BuiltinPlugin, Collector, Emitter, Filters, Host, Needs, PluginCtx};

/// Munin field name and state letter, in the stock plugin's fetch order (after `processes`).
const STATES: [(&str, u8); 8] = [
    ("uninterruptible", b'D'),
    ("runnable", b'R'),
    ("sleeping", b'S'),
    ("idle", b'I'),
    ("stopped", b'T'),
    ("paging", b'W'),
    ("dead", b'X'),
    ("zombie", b'Z'),
];

pub(super) const COLLECTOR: Collector = Collector {
    name: "processes",
    doc: "processes.total, processes.threads, processes.<state> for runnable, sleeping, uninterruptible, zombie, stopped, idle, dead, paging",
    needs: Needs::PIDS,
    emit,
};

fn emit(host: &Host, _: &Filters, e: &mut Emitter<'_>) {
    if !host.has(Needs::PIDS) {
        return;
    }
    let p = &host.procs;
    e.gauge(format_args!("processes.total"), f64::from(p.total));
    e.gauge(format_args!("processes.threads"), p.threads as f64);
    for (name, letter) in STATES {
        e.gauge(format_args!("processes.{name}"), f64::from(p.state(letter)));
    }
}

pub(super) const PROCESSES_PLUGIN: BuiltinPlugin = BuiltinPlugin {
    name: "processes",
    doc: "Processes per state (stock `processes` plugin), GAUGE",
    needs: Needs::PIDS,
    instances: None,
    multigraph: false,
    config: processes_config,
    fetch: processes_fetch,
};

fn processes_config(_: &mut PluginCtx<'_>, _: &str, out: &mut String) {
    out.push_str(
        "graph_title Processes\n\
         graph_info This graph shows the number of processes\n\
         graph_category processes\n\
         graph_args --base 1000 -l 0\n\
         graph_vlabel Number of processes\n\
         graph_order sleeping idle stopped zombie dead paging uninterruptible runnable processes\n",
    );
    let fields: [(&str, &str, &str, &str); 9] = [
        ("dead", "STACK", "ff0000", "The number of dead processes."),
        (
            "paging",
            "STACK",
            "00aaaa",
            "The number of paging processes (<2.6 kernels only).",
        ),
        (
            "idle",
            "STACK",
            "4169e1",
            "The number of idle kernel threads (>= 4.2 kernels only).",
        ),
        (
            "sleeping",
            "AREA",
            "0022ff",
            "The number of sleeping processes.",
        ),
        (
            "uninterruptible",
            "STACK",
            "ffa500",
            "The number of uninterruptible processes (usually IO).",
        ),
        (
            "stopped",
            "STACK",
            "cc0000",
            "The number of stopped or traced processes.",
        ),
        (
            "runnable",
            "STACK",
            "22ff22",
            "The number of runnable processes (on the run queue).",
        ),
        (
            "zombie",
            "STACK",
            "990000",
            "The number of defunct ('zombie') processes (process terminated and parent not waiting).",
        ),
        (
            "processes",
            "LINE1",
            "c0c0c0",
            "The total number of processes.",
        ),
    ];
    for (f, draw, colour, info) in fields {
        let label = if f == "processes" { "total" } else { f };
        let _ = writeln!(
            out,
            "{f}.label {label}\n{f}.draw {draw}\n{f}.colour {colour}\n{f}.info {info}"
        );
    }
}

fn processes_fetch(ctx: &mut PluginCtx<'_>, _: &str, out: &mut String) {
    if !ctx.host.has(Needs::PIDS) {
        return;
    }
    let p = &ctx.host.procs;
    let _ = writeln!(out, "processes.value {}", p.total);
    for (name, letter) in STATES {
        let _ = writeln!(out, "{name}.value {}", p.state(letter));
    }
}

pub(super) const THREADS_PLUGIN: BuiltinPlugin = BuiltinPlugin {
    name: "threads",
    doc: "Number of threads (stock `threads` plugin), GAUGE",
    needs: Needs::PIDS,
    instances: None,
    multigraph: false,
    config: threads_config,
    fetch: threads_fetch,
};

fn threads_config(_: &mut PluginCtx<'_>, _: &str, out: &mut String) {
    out.push_str(
        "graph_title Number of threads\n\
         graph_vlabel number of threads\n\
         graph_category processes\n\
         graph_info This graph shows the number of threads.\n\
         threads.label threads\n\
         threads.info The current number of threads.\n",
    );
}

fn threads_fetch(ctx: &mut PluginCtx<'_>, _: &str, out: &mut String) {
    if ctx.host.has(Needs::PIDS) {
        let _ = writeln!(out, "threads.value {}", ctx.host.procs.threads);
    }
}
