//! Block device I/O from `/proc/diskstats` (spec §6.4).
//!
//! Sent (per second): `disk.<dev>.reads`, `.writes`, `.read_bytes`, `.write_bytes`; `.util`
//! (percent of time busy); `.in_progress` (I/Os in flight). Whole disks only (the names in
//! `/sys/block`), minus `disks_exclude`. Munin plugin `diskstats`: the stock multigraph plugin
//! (latency, utilization, throughput, IOs per device), whose values are rates computed against
//! the reading kept for the same master about 5 minutes earlier, as the stock plugin does with
//! its state file.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

use super::emit::escape_component;
use super::{
    BuiltinPlugin, Collector, Emitter, Filters, Host, Needs, PluginCtx, clean_fieldname,
    perl_number,
};
use crate::config::name_matches;
use crate::procfs::{Disk, whole_disks_by_name};

pub(super) const COLLECTOR: Collector = Collector {
    name: "disk",
    doc: "disk.<dev>.reads, .writes, .read_bytes, .write_bytes (per second), .util (percent busy), .in_progress",
    needs: Needs::DISKSTATS,
    emit,
};

/// Whole disks, in /proc/diskstats order: the devices listed in `/sys/block`, or by the
/// stock plugin's name rule when /sys/block cannot be read.
fn whole_disks(host: &Host) -> Vec<&Disk> {
    match &host.sys_block {
        Some(names) => host
            .disks
            .iter()
            .filter(|d| names.binary_search(&d.name).is_ok())
            .collect(),
        None => {
            let keep = whole_disks_by_name(host.disks.iter().map(|d| d.name.as_str()));
            host.disks
                .iter()
                .filter(|d| keep.contains(&d.name.as_str()))
                .collect()
        }
    }
}

fn emit(host: &Host, filters: &Filters, e: &mut Emitter<'_>) {
    if !host.has(Needs::DISKSTATS) {
        return;
    }
    for d in whole_disks(host) {
        if name_matches(&filters.disks_exclude, &d.name) {
            continue;
        }
        let n = escape_component(&d.name, false);
        e.counter(format_args!("disk.{n}.reads"), d.reads(), 1.0);
        e.counter(format_args!("disk.{n}.writes"), d.writes(), 1.0);
        // a diskstats sector is always 512 bytes
        e.counter(format_args!("disk.{n}.read_bytes"), d.sectors_read(), 512.0);
        e.counter(
            format_args!("disk.{n}.write_bytes"),
            d.sectors_written(),
            512.0,
        );
        // ms busy per second / 10 = percent
        e.counter(format_args!("disk.{n}.util"), d.ms_io(), 0.1);
        e.gauge(format_args!("disk.{n}.in_progress"), d.in_progress() as f64);
    }
}

/// The counters the stock plugin keeps per device.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Counters {
    rd_ios: u64,
    rd_sectors: u64,
    rd_ticks: u64,
    wr_ios: u64,
    wr_sectors: u64,
    wr_ticks: u64,
    tot_ticks: u64,
}

impl From<&Disk> for Counters {
    fn from(d: &Disk) -> Self {
        Counters {
            rd_ios: d.reads(),
            rd_sectors: d.sectors_read(),
            rd_ticks: d.ms_reading(),
            wr_ios: d.writes(),
            wr_sectors: d.sectors_written(),
            wr_ticks: d.ms_writing(),
            tot_ticks: d.ms_io(),
        }
    }
}

/// One reading: Unix seconds and counters per device name.
type Reading = (u64, HashMap<String, Counters>);

/// Earlier readings for one master: (Unix seconds, counters per device name).
#[derive(Debug, Default)]
pub(crate) struct DiskHistory {
    states: Vec<Reading>,
}

/// The stock plugin's assumed polling interval (it picks the reading closest to this age).
const POLL_INTERVAL: u64 = 300;

impl DiskHistory {
    /// The reading whose age is closest to the poll interval (stock `choose_old_state`).
    fn choose(&self, now: u64) -> Option<&Reading> {
        let mut best: Option<(&Reading, u64)> = None;
        for entry in &self.states {
            let delta = now.abs_diff(entry.0.saturating_add(POLL_INTERVAL));
            match best {
                Some((_, d)) if delta > d => break,
                _ => best = Some((entry, delta)),
            }
        }
        best.map(|(e, _)| e)
    }

    /// Drops readings older than 1.5 poll intervals and records `cur` (stock `add_new_state`).
    fn add(&mut self, now: u64, cur: HashMap<String, Counters>) {
        self.states
            .retain(|(t, _)| now.saturating_sub(*t) <= POLL_INTERVAL * 3 / 2);
        self.states.retain(|(t, _)| *t != now);
        self.states.push((now, cur));
        self.states.sort_by_key(|(t, _)| *t);
    }
}

/// One device as the stock plugin shows it.
struct Device {
    name: String,
    pretty: String,
    short: String,
    graph_id: String,
    does_latency: bool,
    counters: Counters,
}

/// Devices with any I/O, without partitions, as the stock `fetch_device_counters` does.
fn plugin_devices(host: &Host) -> Vec<Device> {
    let candidates: Vec<&Disk> = match &host.sys_block {
        Some(_) => whole_disks(host),
        None => host.disks.iter().collect(),
    };
    let active: Vec<&Disk> = candidates
        .into_iter()
        .filter(|d| d.reads() != 0 || d.writes() != 0)
        .collect();
    let keep = whole_disks_by_name(active.iter().map(|d| d.name.as_str()));
    active
        .into_iter()
        .filter(|d| keep.contains(&d.name.as_str()))
        .map(|d| {
            let pretty = if d.name.starts_with("dm-") {
                device_mapper_name(d).unwrap_or_else(|| d.name.clone())
            } else {
                d.name.clone()
            };
            let short = pretty.rsplit('/').next().unwrap_or(&pretty).to_owned();
            let counters = Counters::from(d);
            Device {
                name: d.name.clone(),
                graph_id: clean_fieldname(&pretty),
                pretty,
                short,
                does_latency: counters.rd_ticks + counters.wr_ticks != 0,
                counters,
            }
        })
        .collect()
}

/// `dm-N` → `mapper/<name>` or `<vg>/<lv>`, from the device nodes in /dev/mapper.
fn device_mapper_name(d: &Disk) -> Option<String> {
    let dir = std::fs::read_dir("/dev/mapper").ok()?;
    for entry in dir.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        let rdev = meta.rdev();
        let (major, minor) = (libc_major(rdev), libc_minor(rdev));
        if major != d.major || minor != d.minor {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        // LVM: "vg-lv" (with "--" for a literal dash) → "vg/lv" when /dev/vg/lv exists.
        if let Some((vg, lv)) = split_lvm(&name) {
            let candidate = format!("{vg}/{lv}");
            if Path::new("/dev").join(&candidate).exists() {
                return Some(candidate);
            }
        }
        return Some(format!("mapper/{name}"));
    }
    None
}

fn split_lvm(name: &str) -> Option<(String, String)> {
    let b = name.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'-' {
            let prev_dash = i > 0 && b[i - 1] == b'-';
            let next_dash = b.get(i + 1) == Some(&b'-');
            if !prev_dash && !next_dash {
                let vg = name[..i].replace("--", "-");
                let lv = name[i + 1..].replace("--", "-");
                return (!vg.is_empty() && !lv.is_empty()).then_some((vg, lv));
            }
            if next_dash {
                i += 2;
                continue;
            }
        }
        i += 1;
    }
    None
}

/// glibc's `major()`/`minor()` encoding of a dev_t.
fn libc_major(dev: u64) -> u32 {
    (((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0x0000_0fff)) as u32
}
fn libc_minor(dev: u64) -> u32 {
    (((dev >> 12) & 0xffff_ff00) | (dev & 0x0000_00ff)) as u32
}

pub(super) const PLUGIN: BuiltinPlugin = BuiltinPlugin {
    name: "diskstats",
    doc: "Disk latency, utilization, throughput and IOs per device (stock `diskstats` multigraph plugin)",
    needs: Needs::DISKSTATS.union(Needs::UPTIME),
    instances: None,
    multigraph: true,
    config,
    fetch,
};

/// The stock plugin's graph width rule for long device names.
fn graph_width(devices: &[Device]) -> u64 {
    let base = 400u64;
    let need = |data: u64, len: usize| -> u64 { (6 * (10 + data + len as u64)).saturating_sub(97) };
    let short = devices.iter().map(|d| d.short.len()).max().unwrap_or(0);
    let long = devices.iter().map(|d| d.pretty.len()).max().unwrap_or(0);
    let width = |req: u64| {
        if req <= base {
            base
        } else {
            base + (req - base).div_ceil(50) * 50
        }
    };
    width(need(64, short)).max(width(need(32, long)))
}

fn config(ctx: &mut PluginCtx<'_>, _: &str, out: &mut String) {
    let devices = plugin_devices(ctx.host);
    let width = graph_width(&devices);
    let mut root: Vec<&Device> = devices.iter().collect();
    // sort_by_dm_last: other devices sorted, then dm-* sorted
    root.sort_by(|a, b| {
        (a.name.starts_with("dm-"), &a.name).cmp(&(b.name.starts_with("dm-"), &b.name))
    });
    let _ = write!(
        out,
        "multigraph diskstats_latency\ngraph_title Disk latency per device\ngraph_args --base 1000\ngraph_vlabel Average IO Wait (seconds)\ngraph_category disk\ngraph_width {width}\n"
    );
    for d in root.iter().filter(|d| d.does_latency) {
        let g = &d.graph_id;
        let _ = write!(
            out,
            "{g}_avgwait.label {}\n{g}_avgwait.type GAUGE\n{g}_avgwait.info Average wait time for an I/O request\n{g}_avgwait.min 0\n{g}_avgwait.draw LINE1\n",
            d.pretty
        );
    }
    let _ = write!(
        out,
        "multigraph diskstats_utilization\ngraph_title Utilization per device\ngraph_args --base 1000 --lower-limit 0 --upper-limit 100 --rigid\ngraph_vlabel % busy\ngraph_category disk\ngraph_width {width}\ngraph_scale no\n"
    );
    for d in root.iter().filter(|d| d.does_latency) {
        let g = &d.graph_id;
        let _ = write!(
            out,
            "{g}_util.label {}\n{g}_util.type GAUGE\n{g}_util.info Utilization of the device\n{g}_util.min 0\n{g}_util.draw LINE1\n",
            d.pretty
        );
    }
    let _ = write!(
        out,
        "multigraph diskstats_throughput\ngraph_title Throughput per device\ngraph_args --base 1024\ngraph_vlabel Bytes/${{graph_period}} read (-) / write (+)\ngraph_category disk\ngraph_width {width}\ngraph_info This graph shows averaged throughput for the given disk in bytes.  Higher throughput is usualy linked with higher service time/latency (separate graph).  The graph base is 1024 yeilding Kibi- and Mebi-bytes.\n"
    );
    for d in &root {
        let (g, s) = (&d.graph_id, &d.short);
        let _ = write!(
            out,
            "{g}_rdbytes.label {s}\n{g}_rdbytes.type GAUGE\n{g}_rdbytes.min 0\n{g}_rdbytes.draw LINE1\n{g}_rdbytes.graph no\n{g}_wrbytes.label {s}\n{g}_wrbytes.type GAUGE\n{g}_wrbytes.min 0\n{g}_wrbytes.draw LINE1\n{g}_wrbytes.negative {g}_rdbytes\n"
        );
    }
    let _ = write!(
        out,
        "multigraph diskstats_iops\ngraph_title Disk IOs per device\ngraph_args --base 1000\ngraph_vlabel IOs/${{graph_period}} read (-) / write (+)\ngraph_category disk\ngraph_width {width}\n"
    );
    for d in &root {
        let (g, s) = (&d.graph_id, &d.short);
        let _ = write!(
            out,
            "{g}_rdio.label {s}\n{g}_rdio.type GAUGE\n{g}_rdio.min 0\n{g}_rdio.draw LINE1\n{g}_rdio.graph no\n{g}_wrio.label {s}\n{g}_wrio.type GAUGE\n{g}_wrio.min 0\n{g}_wrio.draw LINE1\n{g}_wrio.negative {g}_rdio\n"
        );
    }
    let mut by_name: Vec<&Device> = devices.iter().collect();
    by_name.sort_by(|a, b| a.name.cmp(&b.name));
    for d in by_name {
        device_config(d, out);
    }
}

fn device_config(d: &Device, out: &mut String) {
    let (g, p) = (&d.graph_id, &d.pretty);
    if d.does_latency {
        let _ = write!(
            out,
            "multigraph diskstats_latency.{g}\n\
             graph_title Average latency for /dev/{p}\n\
             graph_args --base 1000 --logarithmic\n\
             graph_vlabel seconds\n\
             graph_category disk\n\
             graph_info This graph shows average waiting time/latency for different categories of disk operations.   The times that include the queue times indicate how busy your system is.  If the waiting time hits 1 second then your I/O system is 100% busy.\n\
             svctm.label Device IO time\n\
             svctm.type GAUGE\n\
             svctm.info Average time an I/O takes on the block device not including any queue times, just the round trip time for the disk request.\n\
             svctm.min 0\n\
             svctm.draw LINE1\n\
             avgwait.label IO Wait time\n\
             avgwait.type GAUGE\n\
             avgwait.info Average wait time for an I/O from request start to finish (includes queue times et al)\n\
             avgwait.min 0\n\
             avgwait.draw LINE1\n\
             avgrdwait.label Read IO Wait time\n\
             avgrdwait.type GAUGE\n\
             avgrdwait.info Average wait time for a read I/O from request start to finish (includes queue times et al)\n\
             avgrdwait.min 0\n\
             avgrdwait.warning 0:3\n\
             avgrdwait.draw LINE1\n\
             avgwrwait.label Write IO Wait time\n\
             avgwrwait.type GAUGE\n\
             avgwrwait.info Average wait time for a write I/O from request start to finish (includes queue times et al)\n\
             avgwrwait.min 0\n\
             avgwrwait.warning 0:3\n\
             avgwrwait.draw LINE1\n\
             multigraph diskstats_utilization.{g}\n\
             graph_title Disk utilization for /dev/{p}\n\
             graph_args --base 1000 --lower-limit 0 --upper-limit 100 --rigid\n\
             graph_vlabel % busy\n\
             graph_category disk\n\
             graph_scale no\n\
             util.label Utilization\n\
             util.type GAUGE\n\
             util.info Utilization of the device in percent. If the time spent for I/O is close to 1000msec for a given second, the device is nearly 100% saturated.\n\
             util.min 0\n\
             util.draw LINE1\n"
        );
    }
    let _ = write!(
        out,
        "multigraph diskstats_throughput.{g}\n\
         graph_title Disk throughput for /dev/{p}\n\
         graph_args --base 1024\n\
         graph_vlabel Pr ${{graph_period}} read (-) / write (+)\n\
         graph_category disk\n\
         graph_info This graph shows disk throughput in bytes pr ${{graph_period}}.  The graph base is 1024 so KB is for Kibi bytes and so on.\n\
         rdbytes.label invisible\n\
         rdbytes.type GAUGE\n\
         rdbytes.min 0\n\
         rdbytes.draw LINE1\n\
         rdbytes.graph no\n\
         wrbytes.label Bytes\n\
         wrbytes.type GAUGE\n\
         wrbytes.min 0\n\
         wrbytes.draw LINE1\n\
         wrbytes.negative rdbytes\n\
         multigraph diskstats_iops.{g}\n\
         graph_title IOs for /dev/{p}\n\
         graph_args --base 1000\n\
         graph_vlabel Units read (-) / write (+)\n\
         graph_category disk\n\
         graph_info This graph shows the number of IO operations pr second and the average size of these requests.  Lots of small requests should result in in lower throughput (separate graph) and higher service time (separate graph).  Please note that starting with munin-node 2.0 the divisor for K is 1000 instead of 1024 which it was prior to 2.0 beta 3.  This is because the base for this graph is 1000 not 1024.\n\
         rdio.label dummy\n\
         rdio.type GAUGE\n\
         rdio.min 0\n\
         rdio.draw LINE1\n\
         rdio.graph no\n\
         wrio.label IO/sec\n\
         wrio.type GAUGE\n\
         wrio.min 0\n\
         wrio.draw LINE1\n\
         wrio.negative rdio\n\
         avgrdrqsz.label dummy\n\
         avgrdrqsz.type GAUGE\n\
         avgrdrqsz.min 0\n\
         avgrdrqsz.draw LINE1\n\
         avgrdrqsz.graph no\n\
         avgwrrqsz.label Req Size (KB)\n\
         avgwrrqsz.info Average Request Size in kilobytes (1000 based)\n\
         avgwrrqsz.type GAUGE\n\
         avgwrrqsz.min 0\n\
         avgwrrqsz.draw LINE1\n\
         avgwrrqsz.negative avgrdrqsz\n"
    );
}

/// Values of one device over an interval (stock `calculate_values`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Values {
    util: f64,
    svctm: f64,
    avgwait: f64,
    avgrdwait: f64,
    avgwrwait: f64,
    rdbytes: f64,
    wrbytes: f64,
    rdio: f64,
    wrio: f64,
    avgrdrqsz: f64,
    avgwrrqsz: f64,
}

/// `cur - prev`, assuming a 32- or 64-bit wrap when the counter went down (stock
/// `subtract_wrapping_numbers`).
fn sub_wrapping(cur: u64, prev: u64) -> f64 {
    if cur >= prev {
        return (cur - prev) as f64;
    }
    if prev <= 1 << 32 {
        (cur as f64 + 4_294_967_296.0) - prev as f64
    } else {
        (cur as f64 + 18_446_744_073_709_551_616.0) - prev as f64
    }
}

fn calculate(prev: &Counters, cur: &Counters, interval: f64) -> Values {
    let read_ios = sub_wrapping(cur.rd_ios, prev.rd_ios);
    let write_ios = sub_wrapping(cur.wr_ios, prev.wr_ios);
    let rd_ticks = sub_wrapping(cur.rd_ticks, prev.rd_ticks);
    let wr_ticks = sub_wrapping(cur.wr_ticks, prev.wr_ticks);
    let rd_sectors = sub_wrapping(cur.rd_sectors, prev.rd_sectors);
    let wr_sectors = sub_wrapping(cur.wr_sectors, prev.wr_sectors);
    let tot_ticks = sub_wrapping(cur.tot_ticks, prev.tot_ticks);
    let total_ios = read_ios + write_ios;
    let total_ios_per_sec = total_ios / interval;
    let utilization = tot_ticks / interval;
    let nz = |d: f64, v: f64| if d != 0.0 { v } else { 0.0 };
    Values {
        util: utilization / 10.0,
        svctm: nz(total_ios_per_sec, utilization / total_ios_per_sec / 1000.0),
        avgwait: nz(total_ios, (rd_ticks + wr_ticks) / total_ios / 1000.0),
        avgrdwait: nz(read_ios, rd_ticks / read_ios / 1000.0),
        avgwrwait: nz(write_ios, wr_ticks / write_ios / 1000.0),
        rdbytes: rd_sectors / interval * 512.0,
        wrbytes: wr_sectors / interval * 512.0,
        rdio: read_ios / interval,
        wrio: write_ios / interval,
        avgrdrqsz: nz(read_ios, rd_sectors * 512.0 / 1000.0 / read_ios),
        avgwrrqsz: nz(write_ios, wr_sectors * 512.0 / 1000.0 / write_ios),
    }
}

fn fetch(ctx: &mut PluginCtx<'_>, _: &str, out: &mut String) {
    if !ctx.host.has(Needs::DISKSTATS) {
        return;
    }
    let devices = plugin_devices(ctx.host);
    let uptime = ctx.host.uptime.seconds;
    let now = ctx.now;
    let cur: HashMap<String, Counters> = devices
        .iter()
        .map(|d| (d.name.clone(), d.counters))
        .collect();
    let prev = {
        let Ok(mut all) = ctx.state.disk.lock() else {
            return;
        };
        let history = all.entry(ctx.master_ip.to_owned()).or_default();
        let prev = history.choose(now).cloned();
        history.add(now, cur);
        prev
    };
    let Some((prev_time, prev_stats)) = prev else {
        // First run for this master: like the stock plugin, no values yet.
        return;
    };
    let mut interval = now.saturating_sub(prev_time) as f64;
    let rebooted = uptime < interval;
    if rebooted {
        interval = uptime;
    }
    if interval <= 0.0 {
        return;
    }
    let zero = Counters::default();
    let results: BTreeMap<&str, (&Device, Values)> = devices
        .iter()
        .map(|d| {
            let p = if rebooted {
                &zero
            } else {
                prev_stats.get(&d.name).unwrap_or(&zero)
            };
            (d.name.as_str(), (d, calculate(p, &d.counters, interval)))
        })
        .collect();
    write_values(&results, out);
}

fn write_values(results: &BTreeMap<&str, (&Device, Values)>, out: &mut String) {
    let val = |out: &mut String, name: &str, v: f64| {
        out.push_str(name);
        out.push_str(".value ");
        perl_number(out, v);
        out.push('\n');
    };
    out.push_str("multigraph diskstats_latency\n");
    for (d, v) in results.values().filter(|(d, _)| d.does_latency) {
        val(out, &format!("{}_avgwait", d.graph_id), v.avgwait);
    }
    out.push_str("multigraph diskstats_utilization\n");
    for (d, v) in results.values().filter(|(d, _)| d.does_latency) {
        val(out, &format!("{}_util", d.graph_id), v.util);
    }
    out.push_str("multigraph diskstats_throughput\n");
    for (d, v) in results.values() {
        val(out, &format!("{}_rdbytes", d.graph_id), v.rdbytes);
        val(out, &format!("{}_wrbytes", d.graph_id), v.wrbytes);
    }
    out.push_str("multigraph diskstats_iops\n");
    for (d, v) in results.values() {
        val(out, &format!("{}_rdio", d.graph_id), v.rdio);
        val(out, &format!("{}_wrio", d.graph_id), v.wrio);
    }
    for (d, v) in results.values() {
        let g = &d.graph_id;
        if d.does_latency {
            let _ = writeln!(out, "multigraph diskstats_latency.{g}");
            val(out, "svctm", v.svctm);
            val(out, "avgwait", v.avgwait);
            val(out, "avgrdwait", v.avgrdwait);
            val(out, "avgwrwait", v.avgwrwait);
            let _ = writeln!(out, "multigraph diskstats_utilization.{g}");
            val(out, "util", v.util);
        }
        let _ = writeln!(out, "multigraph diskstats_throughput.{g}");
        val(out, "rdbytes", v.rdbytes);
        val(out, "wrbytes", v.wrbytes);
        let _ = writeln!(out, "multigraph diskstats_iops.{g}");
        val(out, "rdio", v.rdio);
        val(out, "wrio", v.wrio);
        val(out, "avgrdrqsz", v.avgrdrqsz);
        val(out, "avgwrrqsz", v.avgwrrqsz);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::PluginState;
    use crate::collect::tests::fixture_host;

    #[test]
    fn stock_formulas() {
        // 300 s apart: 600 reads of 8 sectors, 300 writes of 16 sectors, 1500 ms busy.
        let prev = Counters::default();
        let cur = Counters {
            rd_ios: 600,
            rd_sectors: 4800,
            rd_ticks: 1200,
            wr_ios: 300,
            wr_sectors: 4800,
            wr_ticks: 600,
            tot_ticks: 1500,
        };
        let v = calculate(&prev, &cur, 300.0);
        assert_eq!(v.rdio, 2.0);
        assert_eq!(v.wrio, 1.0);
        assert_eq!(v.rdbytes, 8192.0);
        assert_eq!(v.util, 0.5);
        assert_eq!(v.avgwait, 0.002);
        assert_eq!(v.avgrdwait, 0.002);
        assert_eq!(v.avgrdrqsz, 4.096);
        assert_eq!(v.avgwrrqsz, 8.192);
        // svctm = (5 ms/s busy) / (3 IO/s) / 1000
        assert!((v.svctm - 5.0 / 3.0 / 1000.0).abs() < 1e-15);
    }

    #[test]
    fn wrapping_subtraction() {
        assert_eq!(sub_wrapping(10, 4_294_967_290), 16.0);
        assert_eq!(sub_wrapping(5, 3), 2.0);
    }

    #[test]
    fn first_fetch_is_empty_then_rates_per_master() {
        let mut host = fixture_host("proc-vm", "sys-vm");
        host.refresh(Needs::DISKSTATS | Needs::UPTIME, &mut |_| {});
        let state = PluginState::default();
        let mut out = String::new();
        let mut ctx = PluginCtx {
            host: &mut host,
            master_ip: "10.0.0.1",
            state: &state,
            now: 1000,
        };
        fetch(&mut ctx, "", &mut out);
        assert_eq!(out, "");
        // 300 s later vda read 600 more I/Os; the uptime fixture says 524 s so no reboot.
        if let Some(vda) = ctx.host.disks.iter_mut().find(|d| d.name == "vda") {
            vda.f[0] += 600;
        }
        ctx.now = 1300;
        fetch(&mut ctx, "", &mut out);
        assert!(
            out.starts_with("multigraph diskstats_latency\nvda_avgwait.value 0\n"),
            "{out}"
        );
        assert!(out.contains("multigraph diskstats_iops\nvda_rdio.value 2\nvda_wrio.value 0\n"));
        assert!(out.contains("multigraph diskstats_iops.vda\nrdio.value 2\n"));
        // loop and zram devices without I/O are not shown
        assert!(!out.contains("loop0") && !out.contains("zram0"));
        // another master starts its own history
        let mut out2 = String::new();
        ctx.master_ip = "10.0.0.2";
        fetch(&mut ctx, "", &mut out2);
        assert_eq!(out2, "");
    }

    #[test]
    fn history_keeps_about_one_poll_interval() {
        let mut h = DiskHistory::default();
        for t in [0, 100, 200, 300, 400] {
            h.add(t, HashMap::new());
        }
        // readings older than 450 s are gone; the one closest to 300 s ago wins
        assert_eq!(h.choose(500).map(|e| e.0), Some(200));
        h.add(1000, HashMap::new());
        assert_eq!(h.states.len(), 1);
    }

    #[test]
    fn graph_width_grows_for_long_names() {
        let dev = |name: &str| Device {
            name: name.into(),
            pretty: name.into(),
            short: name.into(),
            graph_id: clean_fieldname(name),
            does_latency: true,
            counters: Counters::default(),
        };
        assert_eq!(graph_width(&[dev("vda")]), 400);
        // 6 × (10 + 64 + 12) − 97 = 419 → 450
        assert_eq!(graph_width(&[dev("nvme0n1abcde")]), 450);
    }

    #[test]
    fn lvm_names() {
        assert_eq!(split_lvm("vg0-root"), Some(("vg0".into(), "root".into())));
        assert_eq!(
            split_lvm("my--vg-lv--a"),
            Some(("my-vg".into(), "lv-a".into()))
        );
        assert_eq!(split_lvm("nodash"), None);
    }
}
