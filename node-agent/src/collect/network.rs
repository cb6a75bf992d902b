//! Network interfaces from `/proc/net/dev` (spec §6.3).
//!
//! Sent (per second): `network.<if>.rx_bytes`, `.tx_bytes`, `.rx_packets`, `.tx_packets`,
//! `.rx_errors`, `.tx_errors`, `.rx_drops`, `.tx_drops`. Byte counters that go down from
//! below 2^32 count as a 32-bit wrap only when the implied rate fits the link speed; any other
//! decrease is a reset (spec §6.11). Munin wildcard plugins `if_<if>` and `if_err_<if>`.

use std::fmt::Write as _;

use super::emit::escape_component;
use super::{BuiltinPlugin, Collector, Emitter, Filters, Host, Needs, PluginCtx};
use crate::config::name_matches;

pub(super) const COLLECTOR: Collector = Collector {
    name: "network",
    doc: "network.<if>.rx_bytes, .tx_bytes, .rx_packets, .tx_packets, .rx_errors, .tx_errors, .rx_drops, .tx_drops: per second",
    needs: Needs::NETDEV,
    emit,
};

fn emit(host: &Host, filters: &Filters, e: &mut Emitter<'_>) {
    if !host.has(Needs::NETDEV) {
        return;
    }
    for dev in &host.netdev {
        if name_matches(&filters.interfaces_exclude, &dev.name) {
            continue;
        }
        let name = escape_component(&dev.name, false);
        // link speed in bytes per second, when the kernel knows it
        let max = host
            .link_speeds
            .get(&dev.name)
            .copied()
            .flatten()
            .map(|mbps| mbps as f64 * 1e6 / 8.0);
        e.counter_wrapping(format_args!("network.{name}.rx_bytes"), dev.rx[0], max);
        e.counter_wrapping(format_args!("network.{name}.tx_bytes"), dev.tx[0], max);
        e.counter(format_args!("network.{name}.rx_packets"), dev.rx[1], 1.0);
        e.counter(format_args!("network.{name}.tx_packets"), dev.tx[1], 1.0);
        e.counter(format_args!("network.{name}.rx_errors"), dev.rx[2], 1.0);
        e.counter(format_args!("network.{name}.tx_errors"), dev.tx[2], 1.0);
        e.counter(format_args!("network.{name}.rx_drops"), dev.rx[3], 1.0);
        e.counter(format_args!("network.{name}.tx_drops"), dev.tx[3], 1.0);
    }
}

fn interfaces(host: &Host, filters: &Filters) -> Vec<String> {
    host.netdev
        .iter()
        .filter(|d| !name_matches(&filters.interfaces_exclude, &d.name))
        .map(|d| d.name.clone())
        .collect()
}

pub(super) const IF_PLUGIN: BuiltinPlugin = BuiltinPlugin {
    name: "if_",
    doc: "Traffic per interface (stock `if_` wildcard plugin): bytes, DERIVE",
    needs: Needs::NETDEV,
    instances: Some(interfaces),
    multigraph: false,
    config: if_config,
    fetch: if_fetch,
};

fn if_config(ctx: &mut PluginCtx<'_>, iface: &str, out: &mut String) {
    let _ = write!(
        out,
        "graph_order down up\n\
         graph_title {iface} traffic\n\
         graph_args --base 1000\n\
         graph_vlabel bits in (-) / out (+) per ${{graph_period}}\n\
         graph_category network\n\
         graph_info This graph shows the traffic of the {iface} network interface. Please note that the traffic is shown in bits per second, not bytes. IMPORTANT: On 32-bit systems the data source for this plugin uses 32-bit counters, which makes the plugin unreliable and unsuitable for most 100-Mb/s (or faster) interfaces, where traffic is expected to exceed 50 Mb/s over a 5 minute period.  This means that this plugin is unsuitable for most 32-bit production environments. To avoid this problem, use the ip_ plugin instead.  There should be no problems on 64-bit systems running 64-bit kernels.\n\
         down.label received\n\
         down.type DERIVE\n\
         down.graph no\n\
         down.cdef down,8,*\n\
         down.min 0\n\
         up.label bps\n\
         up.type DERIVE\n\
         up.negative down\n\
         up.cdef up,8,*\n\
         up.min 0\n"
    );
    match ctx.host.link_speed_mbps(iface) {
        Some(speed) => {
            // The stock plugin's max is Mb/s × 10^6 (bits) although the field counts bytes.
            let bps = speed * 1000 * 1000;
            let _ = write!(
                out,
                "up.max {bps}\nup.info Traffic of the {iface} interface. Maximum speed is {speed} Mb/s.\ndown.max {bps}\n"
            );
        }
        None => {
            // The stock plugin runs as root (Debian's plugin-conf.d `[if_*] user root`).
            let _ = writeln!(
                out,
                "up.info Traffic of the {iface} interface. Unable to determine interface speed. Please install ethtool, wireless-tools, mii-tool or whatever is appropriate for the interface."
            );
        }
    }
}

fn if_fetch(ctx: &mut PluginCtx<'_>, iface: &str, out: &mut String) {
    if let Some(d) = ctx.host.netdev.iter().find(|d| d.name == iface) {
        let _ = writeln!(out, "down.value {}\nup.value {}", d.rx[0], d.tx[0]);
    }
}

pub(super) const IF_ERR_PLUGIN: BuiltinPlugin = BuiltinPlugin {
    name: "if_err_",
    doc: "Errors and drops per interface (stock `if_err_` wildcard plugin), COUNTER",
    needs: Needs::NETDEV,
    instances: Some(interfaces),
    multigraph: false,
    config: if_err_config,
    fetch: if_err_fetch,
};

fn if_err_config(_: &mut PluginCtx<'_>, iface: &str, out: &mut String) {
    let _ = write!(
        out,
        "graph_order rcvd trans\n\
         graph_title {iface} errors\n\
         graph_args --base 1000\n\
         graph_vlabel packets in (-) / out (+) per ${{graph_period}}\n\
         graph_category network\n\
         graph_info This graph shows the amount of errors, packet drops, and collisions on the {iface} network interface.\n\
         rcvd.label errors\n\
         rcvd.type COUNTER\n\
         rcvd.graph no\n\
         rcvd.warning 1\n\
         trans.label errors\n\
         trans.type COUNTER\n\
         trans.negative rcvd\n\
         trans.warning 1\n\
         rxdrop.label drops\n\
         rxdrop.type COUNTER\n\
         rxdrop.graph no\n\
         txdrop.label drops\n\
         txdrop.type COUNTER\n\
         txdrop.negative rxdrop\n\
         collisions.label collisions\n\
         collisions.type COUNTER\n"
    );
}

fn if_err_fetch(ctx: &mut PluginCtx<'_>, iface: &str, out: &mut String) {
    if let Some(d) = ctx.host.netdev.iter().find(|d| d.name == iface) {
        let _ = writeln!(
            out,
            "rcvd.value {}\ntrans.value {}\nrxdrop.value {}\ntxdrop.value {}\ncollisions.value {}",
            d.rx[2], d.tx[2], d.rx[3], d.tx[3], d.tx[5]
        );
    }
}
