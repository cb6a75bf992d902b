//! Swap and paging activity from `/proc/vmstat` (spec §6.9).
//!
//! Sent (per second): `memory.swap_in`, `memory.swap_out` (pages), `memory.page_in_bytes`,
//! `memory.page_out_bytes`, `memory.page_faults`, `memory.major_page_faults`,
//! `memory.oom_kills`. Munin plugin `swap`: pswpin/pswpout, DERIVE.

use std::fmt::Write as _;

use super::{BuiltinPlugin, Collector, Emitter, Filters, Host, Needs, PluginCtx};

pub(super) const COLLECTOR: Collector = Collector {
    name: "vmstat",
    doc: "memory.swap_in, memory.swap_out (pages/s), memory.page_in_bytes, memory.page_out_bytes (bytes/s), memory.page_faults, memory.major_page_faults, memory.oom_kills (per second)",
    needs: Needs::VMSTAT,
    emit,
};

fn emit(host: &Host, _: &Filters, e: &mut Emitter<'_>) {
    if !host.has(Needs::VMSTAT) {
        return;
    }
    let v = &host.vmstat;
    let fields = [
        ("swap_in", v.pswpin, 1.0),
        ("swap_out", v.pswpout, 1.0),
        // pgpgin/pgpgout count KiB.
        ("page_in_bytes", v.pgpgin, 1024.0),
        ("page_out_bytes", v.pgpgout, 1024.0),
        ("page_faults", v.pgfault, 1.0),
        ("major_page_faults", v.pgmajfault, 1.0),
        ("oom_kills", v.oom_kill, 1.0),
    ];
    for (name, raw, scale) in fields {
        if let Some(raw) = raw {
            e.counter(format_args!("memory.{name}"), raw, scale);
        }
    }
}

pub(super) const SWAP_PLUGIN: BuiltinPlugin = BuiltinPlugin {
    name: "swap",
    doc: "Swap in/out (stock `swap` plugin): pages, DERIVE",
    needs: Needs::VMSTAT,
    instances: None,
    multigraph: false,
    config,
    fetch,
};

fn config(_: &mut PluginCtx<'_>, _: &str, out: &mut String) {
    out.push_str(
        "graph_title Swap in/out\n\
         graph_args -l 0 --base 1000\n\
         graph_vlabel pages per ${graph_period} in (-) / out (+)\n\
         graph_category system\n\
         swap_in.label swap\n\
         swap_in.type DERIVE\n\
         swap_in.max 100000\n\
         swap_in.min 0\n\
         swap_in.graph no\n\
         swap_out.label swap\n\
         swap_out.type DERIVE\n\
         swap_out.max 100000\n\
         swap_out.min 0\n\
         swap_out.negative swap_in\n",
    );
}

fn fetch(ctx: &mut PluginCtx<'_>, _: &str, out: &mut String) {
    if !ctx.host.has(Needs::VMSTAT) {
        return;
    }
    if let Some(v) = ctx.host.vmstat.pswpin {
        let _ = writeln!(out, "swap_in.value {v}");
    }
    if let Some(v) = ctx.host.vmstat.pswpout {
        let _ = writeln!(out, "swap_out.value {v}");
    }
}
