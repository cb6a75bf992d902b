//! CPU time per state, total and per core, from `/proc/stat` (spec §6.1).
//!
//! Sent: `cpu.total.<state>` and `cpu.<n>.<state>`, percent of one CPU (ticks per second over
//! USER_HZ), for the states the kernel reports (user nice system idle iowait irq softirq
//! steal guest guest_nice). Munin plugin `cpu`: raw ticks of the `cpu` line, DERIVE.

use std::fmt::Write as _;

use super::{BuiltinPlugin, Collector, Emitter, Filters, Host, Needs, PluginCtx};
use crate::procfs::CPU_STATES;

/// Ticks per second of /proc/stat (USER_HZ, the `CLK_TCK` of sysconf): 100 on every
/// mainstream Linux (spec §6.1), but asked rather than assumed.
fn user_hz() -> f64 {
    static HZ: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *HZ.get_or_init(|| {
        nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
            .ok()
            .flatten()
            .filter(|&hz| hz > 0)
            .map_or(100.0, |hz| hz as f64)
    })
}

pub(super) const COLLECTOR: Collector = Collector {
    name: "cpu",
    doc: "cpu.total.<state>, cpu.<n>.<state>: percent of one CPU per state (user, nice, system, idle, iowait, irq, softirq, steal, guest, guest_nice)",
    needs: Needs::STAT,
    emit,
};

fn emit(host: &Host, _: &Filters, e: &mut Emitter<'_>) {
    if !host.has(Needs::STAT) {
        return;
    }
    let scale = 100.0 / user_hz();
    if let Some(total) = &host.stat.total {
        for (state, ticks) in CPU_STATES.iter().zip(total.ticks).take(total.len) {
            e.counter(format_args!("cpu.total.{state}"), ticks, scale);
        }
    }
    for (n, times) in &host.stat.cpus {
        for (state, ticks) in CPU_STATES.iter().zip(times.ticks).take(times.len) {
            e.counter(format_args!("cpu.{n}.{state}"), ticks, scale);
        }
    }
}

pub(super) const PLUGIN: BuiltinPlugin = BuiltinPlugin {
    name: "cpu",
    doc: "CPU usage (stock `cpu` plugin): ticks per state, DERIVE",
    needs: Needs::STAT,
    instances: None,
    multigraph: false,
    config,
    fetch,
};

/// Fields of the stock plugin, with draw style and info text, in config order.
const FIELDS: [(&str, &str, &str); 4] = [
    (
        "system",
        "AREA",
        "CPU time spent by the kernel in system activities",
    ),
    (
        "user",
        "STACK",
        "CPU time spent by normal programs and daemons",
    ),
    ("nice", "STACK", "CPU time spent by nice(1)d programs"),
    ("idle", "STACK", "Idle CPU time"),
];
const EXT_FIELDS: [(&str, &str); 3] = [
    (
        "iowait",
        "CPU time spent waiting for I/O operations to finish when there is nothing else to do.",
    ),
    ("irq", "CPU time spent handling interrupts"),
    ("softirq", "CPU time spent handling \"batched\" interrupts"),
];
const STEAL_INFO: &str =
    "The time that a virtual CPU had runnable tasks, but the virtual CPU itself was not running";
const GUEST_INFO: &str = "The time spent running a virtual CPU for guest operating systems under the control of the Linux kernel.";

fn config(ctx: &mut PluginCtx<'_>, _: &str, out: &mut String) {
    let stat = &ctx.host.stat;
    let cols = stat.total.map_or(4, |t| t.len);
    let ncpu = stat.cpus.len();
    let limit = ncpu * 100;
    out.push_str("graph_title CPU usage\n");
    out.push_str("graph_order system user nice idle");
    if cols >= 7 {
        out.push_str(" iowait irq softirq");
    } else {
        out.push(' ');
    }
    out.push('\n');
    let _ = writeln!(
        out,
        "graph_args --base 1000 -r --lower-limit 0 --upper-limit {limit}"
    );
    out.push_str("graph_vlabel %\ngraph_scale no\ngraph_info This graph shows how CPU time is spent.\ngraph_category system\ngraph_period second\n");
    for (name, draw, info) in FIELDS {
        field(out, name, draw, info);
    }
    if cols >= 7 {
        for (name, info) in EXT_FIELDS {
            field(out, name, "STACK", info);
        }
    }
    if cols >= 8 {
        field(out, "steal", "STACK", STEAL_INFO);
    }
    if cols >= 9 {
        field(out, "guest", "STACK", GUEST_INFO);
    }
}

fn field(out: &mut String, name: &str, draw: &str, info: &str) {
    let _ = write!(
        out,
        "{name}.label {name}\n{name}.draw {draw}\n{name}.min 0\n{name}.type DERIVE\n{name}.info {info}\n"
    );
}

fn fetch(ctx: &mut PluginCtx<'_>, _: &str, out: &mut String) {
    let Some(total) = ctx.host.stat.total else {
        return;
    };
    // The stock plugin prints user nice system idle, then the extended columns it detected.
    let shown = match total.len {
        n if n >= 9 => 9,
        8 => 8,
        7 => 7,
        _ => 4,
    };
    for (state, ticks) in CPU_STATES.iter().zip(total.ticks).take(shown) {
        let _ = writeln!(out, "{state}.value {ticks}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::emit::LineFormat;
    use crate::collect::tests::fixture_host;
    use crate::rate::RateTracker;

    #[test]
    fn rates_are_percent_of_one_cpu() {
        let mut host = fixture_host("proc-vm", "sys-vm");
        host.refresh(Needs::STAT, &mut |_| {});
        let mut rates = RateTracker::new(30.0);
        let mut out = String::new();
        let filters = Filters::default();
        emit(
            &host,
            &filters,
            &mut Emitter::new(&mut rates, 0.0, "p", LineFormat::Statsd, &mut out),
        );
        assert!(out.is_empty(), "first round only establishes counters");
        // 10 s later user went up by 500 ticks = 50 % of one CPU.
        if let Some(t) = host.stat.total.as_mut() {
            t.ticks[0] += 500;
        }
        emit(
            &host,
            &filters,
            &mut Emitter::new(&mut rates, 10.0, "p", LineFormat::Statsd, &mut out),
        );
        assert!(out.contains("p.cpu.total.user:50|g\n"), "{out}");
        assert!(out.contains("p.cpu.total.guest_nice:0|g\n"));
        assert!(out.contains("p.cpu.1.idle:0|g\n"));
    }
}
