//! Kernel activity from `/proc/stat` and `/proc/sys` (spec §6.7, §6.10): interrupts, context
//! switches, forks, runnable/blocked tasks, open files, entropy.
//!
//! Sent: `kernel.interrupts`, `kernel.context_switches`, `processes.forks` (per second),
//! `processes.running`, `processes.blocked`, `kernel.open_files`, `kernel.open_files_max`,
//! `kernel.entropy_avail`. Munin plugins `forks`, `interrupts`, `vmstat`, `entropy`,
//! `open_files`.

use std::fmt::Write as _;

use super::{BuiltinPlugin, Collector, Emitter, Filters, Host, Needs, PluginCtx};

pub(super) const COLLECTOR: Collector = Collector {
    name: "kernel",
    doc: "kernel.interrupts, kernel.context_switches, processes.forks (per second); processes.running, processes.blocked, kernel.open_files, kernel.open_files_max, kernel.entropy_avail",
    needs: Needs::STAT.union(Needs::FILENR).union(Needs::ENTROPY),
    emit,
};

fn emit(host: &Host, _: &Filters, e: &mut Emitter<'_>) {
    if host.has(Needs::STAT) {
        let s = &host.stat;
        if let Some(v) = s.intr {
            e.counter(format_args!("kernel.interrupts"), v, 1.0);
        }
        if let Some(v) = s.ctxt {
            e.counter(format_args!("kernel.context_switches"), v, 1.0);
        }
        if let Some(v) = s.processes {
            e.counter(format_args!("processes.forks"), v, 1.0);
        }
        if let Some(v) = s.procs_running {
            e.gauge(format_args!("processes.running"), v as f64);
        }
        if let Some(v) = s.procs_blocked {
            e.gauge(format_args!("processes.blocked"), v as f64);
        }
    }
    if host.has(Needs::FILENR) {
        let f = host.filenr;
        e.gauge(
            format_args!("kernel.open_files"),
            f.allocated.saturating_sub(f.unused) as f64,
        );
        e.gauge(format_args!("kernel.open_files_max"), f.max as f64);
    }
    if host.has(Needs::ENTROPY) {
        e.gauge(format_args!("kernel.entropy_avail"), host.entropy as f64);
    }
}

pub(super) const FORKS_PLUGIN: BuiltinPlugin = BuiltinPlugin {
    name: "forks",
    doc: "Fork rate (stock `forks` plugin), DERIVE",
    needs: Needs::STAT,
    instances: None,
    multigraph: false,
    config: forks_config,
    fetch: forks_fetch,
};

fn forks_config(_: &mut PluginCtx<'_>, _: &str, out: &mut String) {
    out.push_str(
        "graph_title Fork rate\n\
         graph_args --base 1000 -l 0 \n\
         graph_vlabel forks / ${graph_period}\n\
         graph_category processes\n\
         graph_info This graph shows the number of forks (new processes started) per second.\n\
         forks.label forks\n\
         forks.type DERIVE\n\
         forks.min 0\n\
         forks.max 100000\n\
         forks.info The number of forks per second.\n",
    );
}

fn forks_fetch(ctx: &mut PluginCtx<'_>, _: &str, out: &mut String) {
    if let (true, Some(v)) = (ctx.host.has(Needs::STAT), ctx.host.stat.processes) {
        let _ = writeln!(out, "forks.value {v}");
    }
}

pub(super) const INTERRUPTS_PLUGIN: BuiltinPlugin = BuiltinPlugin {
    name: "interrupts",
    doc: "Interrupts and context switches (stock `interrupts` plugin), DERIVE",
    needs: Needs::STAT,
    instances: None,
    multigraph: false,
    config: interrupts_config,
    fetch: interrupts_fetch,
};

fn interrupts_config(_: &mut PluginCtx<'_>, _: &str, out: &mut String) {
    out.push_str(
        "graph_title Interrupts and context switches\n\
         graph_args --base 1000 -l 0\n\
         graph_vlabel interrupts & ctx switches / ${graph_period}\n\
         graph_category system\n\
         graph_info This graph shows the number of interrupts and context switches on the system. These are typically high on a busy system.\n\
         intr.info Interrupts are events that alter sequence of instructions executed by a processor. They can come from either hardware (exceptions, NMI, IRQ) or software.\n\
         ctx.info A context switch occurs when a multitasking operatings system suspends the currently running process, and starts executing another.\n\
         intr.label interrupts\n\
         ctx.label context switches\n\
         intr.type DERIVE\n\
         ctx.type DERIVE\n\
         intr.min 0\n\
         ctx.min 0\n",
    );
}

fn interrupts_fetch(ctx: &mut PluginCtx<'_>, _: &str, out: &mut String) {
    if !ctx.host.has(Needs::STAT) {
        return;
    }
    if let Some(v) = ctx.host.stat.intr {
        let _ = writeln!(out, "intr.value {v}");
    }
    if let Some(v) = ctx.host.stat.ctxt {
        let _ = writeln!(out, "ctx.value {v}");
    }
}

pub(super) const VMSTAT_PLUGIN: BuiltinPlugin = BuiltinPlugin {
    name: "vmstat",
    doc: "Runnable and blocked tasks (stock `vmstat` plugin), GAUGE",
    needs: Needs::STAT,
    instances: None,
    multigraph: false,
    config: vmstat_config,
    fetch: vmstat_fetch,
};

fn vmstat_config(_: &mut PluginCtx<'_>, _: &str, out: &mut String) {
    out.push_str(
        "graph_title VMstat\n\
         graph_args --base 1000 -l 0\n\
         graph_vlabel process states\n\
         graph_category processes\n\
         wait.label running\n\
         wait.type GAUGE\n\
         wait.max 500000\n\
         sleep.label I/O sleep\n\
         sleep.type GAUGE\n\
         sleep.max 500000\n",
    );
}

fn vmstat_fetch(ctx: &mut PluginCtx<'_>, _: &str, out: &mut String) {
    // The stock plugin runs `vmstat 1 2` (one second!) for the `r` and `b` columns, which are
    // procs_running and procs_blocked of /proc/stat.
    if !ctx.host.has(Needs::STAT) {
        return;
    }
    if let (Some(r), Some(b)) = (ctx.host.stat.procs_running, ctx.host.stat.procs_blocked) {
        let _ = writeln!(out, "wait.value {r}\nsleep.value {b}");
    }
}

pub(super) const ENTROPY_PLUGIN: BuiltinPlugin = BuiltinPlugin {
    name: "entropy",
    doc: "Available entropy (stock `entropy` plugin), GAUGE",
    needs: Needs::ENTROPY,
    instances: None,
    multigraph: false,
    config: entropy_config,
    fetch: entropy_fetch,
};

fn entropy_config(_: &mut PluginCtx<'_>, _: &str, out: &mut String) {
    out.push_str(
        "graph_title Available entropy\n\
         graph_args --base 1000 -l 0\n\
         graph_vlabel entropy (bytes)\n\
         graph_scale no\n\
         graph_category system\n\
         graph_info This graph shows the amount of entropy available in the system.\n\
         entropy.label entropy\n\
         entropy.info The number of random bytes available. This is typically used by cryptographic applications.\n",
    );
}

fn entropy_fetch(ctx: &mut PluginCtx<'_>, _: &str, out: &mut String) {
    if ctx.host.has(Needs::ENTROPY) {
        let _ = writeln!(out, "entropy.value {}", ctx.host.entropy);
    }
}

pub(super) const OPEN_FILES_PLUGIN: BuiltinPlugin = BuiltinPlugin {
    name: "open_files",
    doc: "File table usage (stock `open_files` plugin), GAUGE",
    needs: Needs::FILENR,
    instances: None,
    multigraph: false,
    config: open_files_config,
    fetch: open_files_fetch,
};

fn open_files_config(ctx: &mut PluginCtx<'_>, _: &str, out: &mut String) {
    out.push_str(
        "graph_title File table usage\n\
         graph_args --base 1000 -l 0\n\
         graph_vlabel number of open files\n\
         graph_category system\n\
         graph_info This graph monitors the Linux open files table.\n\
         used.label open files\n\
         used.info The number of currently open files.\n",
    );
    if ctx.host.has(Needs::FILENR) {
        // awk's printf "%d" of max × 0.92 / 0.98: truncation.
        let max = ctx.host.filenr.max as f64;
        let _ = writeln!(out, "used.warning {}", (max * 0.92) as u64);
        let _ = writeln!(out, "used.critical {}", (max * 0.98) as u64);
    }
}

fn open_files_fetch(ctx: &mut PluginCtx<'_>, _: &str, out: &mut String) {
    if ctx.host.has(Needs::FILENR) {
        let f = ctx.host.filenr;
        let _ = writeln!(
            out,
            "used.value {}",
            i128::from(f.allocated) - i128::from(f.unused)
        );
    }
}
