//! Memory usage from `/proc/meminfo` (spec §6.2).
//!
//! Sent (bytes): `memory.total`, `.available`, `.free`, `.buffers`, `.cached`, `.shmem`,
//! `.slab`, `.page_tables`, `.committed`, `.dirty`, `.writeback`, `.swap_total`, `.swap_free`,
//! `.swap_cached`. Munin plugin `memory`: the stock plugin's fields (apps, free, buffers,
//! cached = Cached − Shmem, swap = SwapTotal − SwapFree, ...), GAUGE.

use std::fmt::Write as _;

use super::{BuiltinPlugin, Collector, Emitter, Filters, Host, Needs, PluginCtx};
use crate::procfs::Meminfo;

pub(super) const COLLECTOR: Collector = Collector {
    name: "memory",
    doc: "memory.total, .available, .free, .buffers, .cached, .shmem, .slab, .page_tables, .committed, .dirty, .writeback, .swap_total, .swap_free, .swap_cached: bytes",
    needs: Needs::MEMINFO,
    emit,
};

fn emit(host: &Host, _: &Filters, e: &mut Emitter<'_>) {
    if !host.has(Needs::MEMINFO) {
        return;
    }
    let m = &host.meminfo;
    let fields = [
        ("total", m.mem_total),
        ("available", m.mem_available),
        ("free", m.mem_free),
        ("buffers", m.buffers),
        ("cached", m.cached),
        ("shmem", m.shmem),
        ("slab", m.slab),
        ("page_tables", m.page_tables),
        ("committed", m.committed_as),
        ("dirty", m.dirty),
        ("writeback", m.writeback),
        ("swap_total", m.swap_total),
        ("swap_free", m.swap_free),
        ("swap_cached", m.swap_cached),
    ];
    for (name, v) in fields {
        if let Some(v) = v {
            e.gauge(format_args!("memory.{name}"), v as f64);
        }
    }
}

pub(super) const PLUGIN: BuiltinPlugin = BuiltinPlugin {
    name: "memory",
    doc: "Memory usage (stock `memory` plugin): bytes per use, GAUGE",
    needs: Needs::MEMINFO,
    instances: None,
    multigraph: false,
    config,
    fetch,
};

/// KSM shared pages in bytes, when KSM runs (the stock plugin's `ksm_sharing`).
fn ksm(ctx: &mut PluginCtx<'_>) -> Option<u64> {
    let reader = ctx.host.reader();
    let run = reader.sys("kernel/mm/ksm/run").ok()?.trim().to_owned();
    if run.is_empty() || run == "0" {
        return None;
    }
    let pages: u64 = reader
        .sys("kernel/mm/ksm/pages_sharing")
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(pages.saturating_mul(4096))
}

fn config(ctx: &mut PluginCtx<'_>, _: &str, out: &mut String) {
    let ksm = ksm(ctx);
    let m = &ctx.host.meminfo;
    let _ = writeln!(
        out,
        "graph_args --base 1024 -l 0 --upper-limit {}",
        m.mem_total.unwrap_or(0)
    );
    out.push_str("graph_vlabel Bytes\ngraph_title Memory usage\ngraph_category system\ngraph_info This graph shows what the machine uses memory for.\n");
    out.push_str("graph_order apps ");
    for (present, name) in [
        (m.page_tables.is_some(), "page_tables "),
        (m.percpu.is_some(), "per_cpu "),
        (m.swap_cached.is_some(), "swap_cache "),
        (m.slab.is_some(), "slab "),
        (m.shmem.is_some(), "shmem "),
    ] {
        if present {
            out.push_str(name);
        }
    }
    out.push_str("cached buffers free swap \n");
    let always: [(&str, &str, &str, &str, &str); 5] = [
        (
            "apps",
            "apps",
            "AREA",
            "Memory used by user-space applications.",
            "COLOUR0",
        ),
        (
            "buffers",
            "buffers",
            "STACK",
            "Block device (e.g. harddisk) cache. Also where \"dirty\" blocks are stored until written.",
            "COLOUR5",
        ),
        ("swap", "swap", "STACK", "Swap space used.", "COLOUR7"),
        (
            "cached",
            "cache",
            "STACK",
            "Parked file data (file content) cache.",
            "COLOUR4",
        ),
        (
            "free",
            "unused",
            "STACK",
            "Wasted memory. Memory that is not used for anything at all.",
            "COLOUR6",
        ),
    ];
    for (f, label, draw, info, colour) in always {
        field(out, f, label, draw, Some(info), colour);
    }
    // (present, field, label, draw, info, colour)
    type Row<'a> = (bool, &'a str, &'a str, &'a str, Option<&'a str>, &'a str);
    let optional: [Row<'_>; 12] = [
        (
            m.shmem.is_some(),
            "shmem",
            "shmem",
            "STACK",
            Some("Shared Memory (SYSV SHM segments, tmpfs)."),
            "COLOUR9",
        ),
        (
            m.slab.is_some(),
            "slab",
            "slab_cache",
            "STACK",
            Some("Memory used by the kernel (major users  are caches like inode, dentry, etc)."),
            "COLOUR3",
        ),
        (
            m.swap_cached.is_some(),
            "swap_cache",
            "swap_cache",
            "STACK",
            Some(
                "A piece of memory that keeps track of pages that have been fetched from swap but not yet been modified.",
            ),
            "COLOUR2",
        ),
        (
            m.page_tables.is_some(),
            "page_tables",
            "page_tables",
            "STACK",
            Some("Memory used to map between virtual and physical memory addresses."),
            "COLOUR1",
        ),
        (
            m.percpu.is_some(),
            "per_cpu",
            "per_cpu",
            "STACK",
            Some("Per CPU allocations"),
            "COLOUR20",
        ),
        (
            m.vmalloc_used.is_some(),
            "vmalloc_used",
            "vmalloc_used",
            "LINE2",
            Some("'VMalloc' (kernel) memory used"),
            "COLOUR8",
        ),
        (
            m.committed_as.is_some(),
            "committed",
            "committed",
            "LINE2",
            Some(
                "The amount of memory allocated to programs. Overcommitting is normal, but may indicate memory leaks.",
            ),
            "COLOUR10",
        ),
        (
            m.mapped.is_some(),
            "mapped",
            "mapped",
            "LINE2",
            Some("All mmap()ed pages."),
            "COLOUR11",
        ),
        (
            m.active.is_some(),
            "active",
            "active",
            "LINE2",
            Some("Memory recently used. Not reclaimed unless absolutely necessary."),
            "COLOUR12",
        ),
        (
            m.inactive.is_some(),
            "inactive",
            "inactive",
            "LINE2",
            Some("Memory not currently used."),
            "COLOUR15",
        ),
        (
            m.inact_dirty.is_some(),
            "inact_dirty",
            "inactive_dirty",
            "LINE1",
            Some("Memory not currently used, but in need of being written to disk."),
            "COLOUR16",
        ),
        (
            m.inact_laundry.is_some(),
            "inact_laundry",
            "inactive_laundry",
            "LINE1",
            None,
            "COLOUR17",
        ),
    ];
    for (present, f, label, draw, info, colour) in optional {
        if present {
            field(out, f, label, draw, info, colour);
        }
    }
    if m.inact_clean.is_some() {
        field(
            out,
            "inact_clean",
            "inactive_clean",
            "LINE1",
            Some("Memory not currently used."),
            "COLOUR18",
        );
    }
    if ksm.is_some() {
        out.push_str("ksm_sharing.label KSM sharing\nksm_sharing.draw LINE2\nksm_sharing.colour FFBFFF\nksm_sharing.info Memory saved by KSM sharing\nksm_sharing.colour COLOUR19\n");
    }
}

fn field(out: &mut String, f: &str, label: &str, draw: &str, info: Option<&str>, colour: &str) {
    let _ = writeln!(out, "{f}.label {label}\n{f}.draw {draw}");
    if let Some(info) = info {
        let _ = writeln!(out, "{f}.info {info}");
    }
    let _ = writeln!(out, "{f}.colour {colour}");
}

fn fetch(ctx: &mut PluginCtx<'_>, _: &str, out: &mut String) {
    if !ctx.host.has(Needs::MEMINFO) {
        return;
    }
    let ksm = ksm(ctx);
    write_values(&ctx.host.meminfo, ksm, out);
}

/// The stock plugin's fetch output, in its order.
fn write_values(m: &Meminfo, ksm: Option<u64>, out: &mut String) {
    let mut line = |name: &str, v: i128| {
        let _ = writeln!(out, "{name}.value {v}");
    };
    let v = |x: Option<u64>| i128::from(x.unwrap_or(0));
    for (name, x) in [
        ("slab", m.slab),
        ("swap_cache", m.swap_cached),
        ("page_tables", m.page_tables),
        ("per_cpu", m.percpu),
        ("vmalloc_used", m.vmalloc_used),
    ] {
        if x.is_some() {
            line(name, v(x));
        }
    }
    let apps = v(m.mem_total)
        - v(m.mem_free)
        - v(m.buffers)
        - v(m.cached)
        - v(m.slab)
        - v(m.page_tables)
        - v(m.percpu)
        - v(m.swap_cached);
    line("apps", apps);
    line("free", v(m.mem_free));
    line("buffers", v(m.buffers));
    line("cached", v(m.cached) - v(m.shmem));
    line("swap", v(m.swap_total) - v(m.swap_free));
    for (name, x) in [
        ("shmem", m.shmem),
        ("committed", m.committed_as),
        ("mapped", m.mapped),
        ("active", m.active),
        ("inactive", m.inactive),
        ("inact_dirty", m.inact_dirty),
        ("inact_laundry", m.inact_laundry),
        ("inact_clean", m.inact_clean),
        ("ksm_sharing", ksm),
    ] {
        if x.is_some() {
            line(name, v(x));
        }
    }
}
