//! Built-in collectors. One file per area (cpu, memory, network, ...); each file holds
//! the area's [`Collector`] entry (what is sent to StatsD/Carbon every interval, under the
//! naming scheme of spec §7) and its [`BuiltinPlugin`] entries (the same data presented as
//! the stock Munin plugins of spec §6, with the stock field names, types and config lines).
//! The two tables at the bottom of this file list them; adding a collector is one file plus
//! one line per table.

mod cpu;
mod disk;
mod emit;
mod filesystem;
mod kernel;
mod load;
mod memory;
mod network;
mod processes;
mod uptime;
mod vmstat;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::ops::BitOr;
use std::path::PathBuf;
use std::sync::Mutex;

pub(crate) use disk::DiskHistory;
pub(crate) use emit::{Emitter, LineFormat};
pub(crate) use filesystem::{collector_mounts, df_mounts};

use crate::config::Config;
use crate::error::SourceError;
use crate::procfs::{
    self, Disk, FileNr, LoadAvg, Meminfo, Mount, NetDev, ProcReader, Stat, Uptime, Vmstat,
};
use crate::statfs::FsStat;

/// Which sources a collector or plugin reads; [`Host::refresh`] reads only those.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Needs(u32);

impl Needs {
    pub(crate) const NONE: Needs = Needs(0);
    pub(crate) const STAT: Needs = Needs(1);
    pub(crate) const MEMINFO: Needs = Needs(1 << 1);
    pub(crate) const NETDEV: Needs = Needs(1 << 2);
    pub(crate) const DISKSTATS: Needs = Needs(1 << 3);
    pub(crate) const MOUNTS: Needs = Needs(1 << 4);
    pub(crate) const LOADAVG: Needs = Needs(1 << 5);
    pub(crate) const UPTIME: Needs = Needs(1 << 6);
    pub(crate) const VMSTAT: Needs = Needs(1 << 7);
    pub(crate) const PIDS: Needs = Needs(1 << 8);
    pub(crate) const FILENR: Needs = Needs(1 << 9);
    pub(crate) const ENTROPY: Needs = Needs(1 << 10);

    pub(crate) const fn union(self, other: Needs) -> Needs {
        Needs(self.0 | other.0)
    }

    pub(crate) fn has(self, other: Needs) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for Needs {
    type Output = Needs;
    fn bitor(self, rhs: Needs) -> Needs {
        self.union(rhs)
    }
}

/// Name filters from the configuration.
#[derive(Clone, Debug, Default)]
pub(crate) struct Filters {
    pub(crate) interfaces_exclude: Vec<String>,
    pub(crate) disks_exclude: Vec<String>,
    pub(crate) fs_types_exclude: Vec<String>,
    pub(crate) fs_mounts_exclude: Vec<String>,
}

impl Filters {
    pub(crate) fn from_config(c: &Config) -> Self {
        Filters {
            interfaces_exclude: c.interfaces_exclude.clone(),
            disks_exclude: c.disks_exclude.clone(),
            fs_types_exclude: c.fs_types_exclude.clone(),
            fs_mounts_exclude: c.fs_mounts_exclude.clone(),
        }
    }
}

/// Process counts from one scan of `/proc/<pid>/stat`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ProcCounts {
    /// Processes per state letter (index = ASCII code).
    pub(crate) by_state: [u32; 128],
    /// All processes seen.
    pub(crate) total: u32,
    /// Threads summed over all processes.
    pub(crate) threads: u64,
}

impl Default for ProcCounts {
    fn default() -> Self {
        ProcCounts {
            by_state: [0; 128],
            total: 0,
            threads: 0,
        }
    }
}

impl ProcCounts {
    pub(crate) fn state(&self, letter: u8) -> u32 {
        self.by_state.get(usize::from(letter)).copied().unwrap_or(0)
    }
}

/// The latest readings of every source, reused from round to round.
#[derive(Debug)]
pub(crate) struct Host {
    reader: ProcReader,
    /// Sources read successfully by the last [`Host::refresh`].
    ok: Needs,
    pub(crate) stat: Stat,
    pub(crate) meminfo: Meminfo,
    pub(crate) netdev: Vec<NetDev>,
    /// Link speed (Mb/s) per interface, read once per interface name.
    pub(crate) link_speeds: HashMap<String, Option<u64>>,
    pub(crate) disks: Vec<Disk>,
    /// Names from `<sys>/block` (whole disks), when that directory exists.
    pub(crate) sys_block: Option<Vec<String>>,
    pub(crate) mounts: Vec<Mount>,
    pub(crate) loadavg: LoadAvg,
    pub(crate) uptime: Uptime,
    pub(crate) vmstat: Vmstat,
    pub(crate) filenr: FileNr,
    pub(crate) entropy: u64,
    pub(crate) procs: ProcCounts,
    /// `statvfs` results of the mounts asked for, filled by the caller after `refresh`.
    pub(crate) fs: Vec<(PathBuf, FsStat)>,
    /// Parse problems seen (lines skipped) since start.
    pub(crate) bad_lines: u64,
}

impl Host {
    pub(crate) fn new(config: &Config) -> Self {
        Host {
            reader: ProcReader::new(&config.proc_root, &config.sys_root),
            ok: Needs::NONE,
            stat: Stat::default(),
            meminfo: Meminfo::default(),
            netdev: Vec::new(),
            link_speeds: HashMap::new(),
            disks: Vec::new(),
            sys_block: None,
            mounts: Vec::new(),
            loadavg: LoadAvg::default(),
            uptime: Uptime::default(),
            vmstat: Vmstat::default(),
            filenr: FileNr::default(),
            entropy: 0,
            procs: ProcCounts::default(),
            fs: Vec::new(),
            bad_lines: 0,
        }
    }

    /// Whether `needs` were all read successfully by the last refresh.
    pub(crate) fn has(&self, needs: Needs) -> bool {
        self.ok.has(needs)
    }

    /// Reads the sources in `needs`. A source that fails is reported through `on_error` and
    /// left out (its collectors emit nothing this time); the others are still read.
    pub(crate) fn refresh(&mut self, needs: Needs, on_error: &mut dyn FnMut(&SourceError)) {
        self.ok = Needs::NONE;
        let mut ok = Needs::NONE;
        let mut bad = 0usize;
        if needs.has(Needs::STAT) {
            match self.reader.proc("stat") {
                Ok(text) => {
                    procfs::parse_stat(text, &mut self.stat);
                    bad += self.stat.bad_lines;
                    if self.stat.total.is_some() {
                        ok = ok | Needs::STAT;
                    }
                }
                Err(e) => on_error(&e),
            }
        }
        if needs.has(Needs::MEMINFO) {
            match self.reader.proc("meminfo") {
                Ok(text) => {
                    procfs::parse_meminfo(text, &mut self.meminfo);
                    bad += self.meminfo.bad_lines;
                    if self.meminfo.mem_total.is_some() {
                        ok = ok | Needs::MEMINFO;
                    }
                }
                Err(e) => on_error(&e),
            }
        }
        if needs.has(Needs::NETDEV) {
            match self.reader.proc("net/dev") {
                Ok(text) => {
                    bad += procfs::parse_netdev(text, &mut self.netdev);
                    ok = ok | Needs::NETDEV;
                    self.refresh_link_speeds();
                }
                Err(e) => on_error(&e),
            }
        }
        if needs.has(Needs::DISKSTATS) {
            match self.reader.proc("diskstats") {
                Ok(text) => {
                    bad += procfs::parse_diskstats(text, &mut self.disks);
                    ok = ok | Needs::DISKSTATS;
                }
                Err(e) => on_error(&e),
            }
            self.sys_block = read_sys_block(&self.reader);
        }
        if needs.has(Needs::MOUNTS) {
            match self.reader.proc("self/mountinfo") {
                Ok(text) => {
                    bad += procfs::parse_mountinfo(text, &mut self.mounts);
                    ok = ok | Needs::MOUNTS;
                }
                Err(e) => on_error(&e),
            }
        }
        if needs.has(Needs::LOADAVG) {
            match self.reader.proc("loadavg") {
                Ok(text) => {
                    if procfs::parse_loadavg(text, &mut self.loadavg) {
                        ok = ok | Needs::LOADAVG;
                    } else {
                        bad += 1;
                    }
                }
                Err(e) => on_error(&e),
            }
        }
        if needs.has(Needs::UPTIME) {
            match self.reader.proc("uptime") {
                Ok(text) => match procfs::parse_uptime(text) {
                    Some(u) => {
                        self.uptime = u;
                        ok = ok | Needs::UPTIME;
                    }
                    None => bad += 1,
                },
                Err(e) => on_error(&e),
            }
        }
        if needs.has(Needs::VMSTAT) {
            match self.reader.proc("vmstat") {
                Ok(text) => {
                    procfs::parse_vmstat(text, &mut self.vmstat);
                    ok = ok | Needs::VMSTAT;
                }
                Err(e) => on_error(&e),
            }
        }
        if needs.has(Needs::FILENR) {
            match self.reader.proc("sys/fs/file-nr") {
                Ok(text) => match procfs::parse_filenr(text) {
                    Some(f) => {
                        self.filenr = f;
                        ok = ok | Needs::FILENR;
                    }
                    None => bad += 1,
                },
                Err(e) => on_error(&e),
            }
        }
        if needs.has(Needs::ENTROPY) {
            match self.reader.proc("sys/kernel/random/entropy_avail") {
                Ok(text) => match text.trim().parse() {
                    Ok(v) => {
                        self.entropy = v;
                        ok = ok | Needs::ENTROPY;
                    }
                    Err(_) => bad += 1,
                },
                Err(e) => on_error(&e),
            }
        }
        if needs.has(Needs::PIDS) {
            match self.scan_pids() {
                Ok(()) => ok = ok | Needs::PIDS,
                Err(e) => on_error(&e),
            }
        }
        self.bad_lines += bad as u64;
        self.ok = ok;
    }

    /// Counts processes per state and threads from every `/proc/<pid>/stat`. A process that
    /// exits during the scan is simply not counted.
    fn scan_pids(&mut self) -> Result<(), SourceError> {
        let root = self.reader.proc_root().to_owned();
        let dir = std::fs::read_dir(&root).map_err(|source| SourceError::Read {
            path: root.clone(),
            source,
        })?;
        let mut counts = ProcCounts::default();
        let mut path = PathBuf::new();
        for entry in dir.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            path.clear();
            path.push(&root);
            path.push(name);
            path.push("stat");
            let Ok(text) = self.reader.path(&path) else {
                continue;
            };
            if let Some(ps) = procfs::parse_pid_stat(text) {
                counts.total += 1;
                counts.threads += ps.threads;
                if let Some(slot) = counts.by_state.get_mut(usize::from(ps.state)) {
                    *slot += 1;
                }
            }
        }
        self.procs = counts;
        Ok(())
    }

    fn refresh_link_speeds(&mut self) {
        let netdev = &self.netdev;
        self.link_speeds
            .retain(|name, _| netdev.iter().any(|d| d.name == *name));
        let new: Vec<String> = self
            .netdev
            .iter()
            .filter(|d| !self.link_speeds.contains_key(&d.name))
            .map(|d| d.name.clone())
            .collect();
        for name in new {
            let speed = self.link_speed_mbps(&name);
            self.link_speeds.insert(name, speed);
        }
    }

    /// Link speed of an interface in Mb/s from `<sys>/class/net/<if>/speed`, when known.
    pub(crate) fn link_speed_mbps(&mut self, iface: &str) -> Option<u64> {
        if iface.contains('/') || iface.starts_with('.') {
            return None;
        }
        let text = self.reader.sys(&format!("class/net/{iface}/speed")).ok()?;
        let v: i64 = text.trim().parse().ok()?;
        u64::try_from(v).ok().filter(|v| *v > 0)
    }

    /// A reader for one-off files (device-mapper names and the like).
    pub(crate) fn reader(&mut self) -> &mut ProcReader {
        &mut self.reader
    }
}

fn read_sys_block(reader: &ProcReader) -> Option<Vec<String>> {
    let dir = std::fs::read_dir(reader.sys_root().join("block")).ok()?;
    let mut names: Vec<String> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(|s| s.replace('!', "/")))
        .collect();
    names.sort();
    Some(names)
}

/// What a collector emits in one round.
pub(crate) struct Collector {
    /// Name used in the `collectors` config key.
    pub(crate) name: &'static str,
    /// One line for `--help`/docs: what is sent, under which names.
    pub(crate) doc: &'static str,
    /// Sources it reads.
    pub(crate) needs: Needs,
    /// Emits this round's values.
    pub(crate) emit: fn(&Host, &Filters, &mut Emitter<'_>),
}

/// State the built-in plugins may keep between requests (per master, like `MUNIN_STATEFILE`).
#[derive(Debug, Default)]
pub(crate) struct PluginState {
    /// diskstats: earlier readings per master IP.
    pub(crate) disk: Mutex<HashMap<String, DiskHistory>>,
}

/// Everything a built-in plugin sees when it runs.
pub(crate) struct PluginCtx<'a> {
    pub(crate) host: &'a mut Host,
    /// The master's address (`MUNIN_MASTER_IP`), for per-master state.
    pub(crate) master_ip: &'a str,
    pub(crate) state: &'a PluginState,
    /// Unix seconds now.
    pub(crate) now: u64,
}

/// A built-in presented as a stock Munin plugin (spec §6, §7: same names, fields and types).
pub(crate) struct BuiltinPlugin {
    /// Plugin name, or for wildcard plugins the prefix (`if_`), as in `disabled_builtin_plugins`.
    pub(crate) name: &'static str,
    /// What it shows.
    pub(crate) doc: &'static str,
    /// Sources to read before `config`/`fetch`.
    pub(crate) needs: Needs,
    /// For wildcard plugins: the instance suffixes (interfaces); `None` for plain plugins.
    pub(crate) instances: Option<fn(&Host, &Filters) -> Vec<String>>,
    /// Whether its output uses `multigraph` (hidden from `list` without `cap multigraph`).
    pub(crate) multigraph: bool,
    /// Writes the `config` output (lines ending in LF) for the instance (`""` for plain plugins).
    pub(crate) config: fn(&mut PluginCtx<'_>, &str, &mut String),
    /// Writes the fetch output.
    pub(crate) fetch: fn(&mut PluginCtx<'_>, &str, &mut String),
}

/// The registry of collectors sent every interval (key `collectors`).
pub(crate) static COLLECTORS: &[Collector] = &[
    cpu::COLLECTOR,
    load::COLLECTOR,
    memory::COLLECTOR,
    vmstat::COLLECTOR,
    network::COLLECTOR,
    disk::COLLECTOR,
    filesystem::COLLECTOR,
    kernel::COLLECTOR,
    processes::COLLECTOR,
    uptime::COLLECTOR,
];

/// The registry of built-in Munin plugins.
pub(crate) static PLUGINS: &[BuiltinPlugin] = &[
    cpu::PLUGIN,
    memory::PLUGIN,
    load::PLUGIN,
    network::IF_PLUGIN,
    network::IF_ERR_PLUGIN,
    filesystem::DF_PLUGIN,
    filesystem::DF_INODE_PLUGIN,
    disk::PLUGIN,
    kernel::FORKS_PLUGIN,
    kernel::INTERRUPTS_PLUGIN,
    kernel::VMSTAT_PLUGIN,
    kernel::ENTROPY_PLUGIN,
    kernel::OPEN_FILES_PLUGIN,
    processes::PROCESSES_PLUGIN,
    processes::THREADS_PLUGIN,
    vmstat::SWAP_PLUGIN,
    uptime::PLUGIN,
];

/// Name and description of every collector (for `--help` and docs).
pub(crate) fn describe_collectors() -> Vec<(&'static str, &'static str)> {
    COLLECTORS.iter().map(|c| (c.name, c.doc)).collect()
}

/// Name and description of every built-in Munin plugin.
pub(crate) fn describe_plugins() -> Vec<(&'static str, &'static str)> {
    PLUGINS.iter().map(|p| (p.name, p.doc)).collect()
}

pub(crate) fn find_collector(name: &str) -> Option<&'static Collector> {
    COLLECTORS.iter().find(|c| c.name == name)
}

/// Formats a number the way Perl prints it (`%.15g`), so built-in plugin values look like the
/// stock Perl plugins' values (`12.7472559210447`, `0`, `1164580.57142857`).
pub(crate) fn perl_number(out: &mut String, v: f64) {
    if !v.is_finite() {
        out.push('U');
        return;
    }
    if v == v.trunc() && v.abs() < 1e15 {
        let _ = write!(out, "{}", v as i64);
        return;
    }
    // %.15g: 15 significant digits; exponent form when exp < -4 or exp >= 15.
    let sci = format!("{v:.14e}");
    let Some((mantissa, exp)) = sci.split_once('e') else {
        let _ = write!(out, "{v}");
        return;
    };
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..15).contains(&exp) {
        let decimals = usize::try_from(14 - exp).unwrap_or(0);
        let fixed = format!("{v:.decimals$}");
        out.push_str(trim_zeros(&fixed));
    } else {
        let m = trim_zeros(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        let _ = write!(out, "{m}e{sign}{:02}", exp.abs());
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// Munin's `clean_fieldname`: a run of illegal leading characters becomes one `_`, other
/// illegal characters become `_`, and `root` becomes `__root`.
pub(crate) fn clean_fieldname(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 1);
    let mut chars = name.chars().peekable();
    let mut leading_bad = false;
    while let Some(&c) = chars.peek() {
        if c.is_ascii_alphabetic() || c == '_' {
            break;
        }
        leading_bad = true;
        chars.next();
    }
    if leading_bad {
        out.push('_');
    }
    for c in chars {
        out.push(if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '_'
        });
    }
    if out == "root" {
        return "__root".to_owned();
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::path::Path;

    /// A host reading the fixture trees under tests/data.
    pub(crate) fn fixture_host(proc: &str, sys: &str) -> Host {
        let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
        let config = Config {
            proc_root: base.join(proc),
            sys_root: base.join(sys),
            ..Config::default()
        };
        Host::new(&config)
    }

    /// Our built-in plugins against Debian's stock plugins run on the same fixture files
    /// (tests/data/expected/, made by tests/data/capture-expected.sh).
    #[test]
    fn builtins_print_what_the_stock_plugins_print() {
        let expected = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/expected");
        let plugins = [
            "cpu",
            "memory",
            "load",
            "uptime",
            "forks",
            "interrupts",
            "swap",
            "open_files",
            "entropy",
            "vmstat",
        ];
        for name in plugins {
            let plugin = PLUGINS.iter().find(|p| p.name == name).unwrap();
            let mut host = fixture_host("proc-vm", "sys-vm");
            host.refresh(plugin.needs, &mut |e| panic!("{name}: {e}"));
            let state = PluginState::default();
            let mut ctx = PluginCtx {
                host: &mut host,
                master_ip: "",
                state: &state,
                now: 0,
            };
            for (what, f) in [("config", plugin.config), ("fetch", plugin.fetch)] {
                let mut out = String::new();
                f(&mut ctx, "", &mut out);
                let want =
                    std::fs::read_to_string(expected.join(format!("{name}.{what}"))).unwrap();
                assert_eq!(out, want, "{name} {what}");
            }
        }
    }

    #[test]
    fn perl_numbers() {
        let cases = [
            (0.0, "0"),
            (12.0, "12"),
            (12.747255921044736, "12.7472559210447"),
            (1164580.5714285714, "1164580.57142857"),
            (0.00206610868510432, "0.00206610868510432"),
            (0.000175157690441533, "0.000175157690441533"),
            (0.5, "0.5"),
            (1e20, "1e+20"),
            (0.00001234, "1.234e-05"),
            (-3.25, "-3.25"),
        ];
        for (v, want) in cases {
            let mut s = String::new();
            perl_number(&mut s, v);
            assert_eq!(s, want, "{v}");
        }
    }

    #[test]
    fn clean_fieldnames_like_munin() {
        assert_eq!(clean_fieldname("/dev/vda"), "_dev_vda");
        assert_eq!(clean_fieldname("/dev/shm"), "_dev_shm");
        assert_eq!(
            clean_fieldname("model_tools_unavailable"),
            "model_tools_unavailable"
        );
        assert_eq!(clean_fieldname("123abc"), "_abc");
        assert_eq!(clean_fieldname("root"), "__root");
        assert_eq!(clean_fieldname("cciss/c0d0"), "cciss_c0d0");
        assert_eq!(clean_fieldname("VG-root/lv"), "VG_root_lv");
    }

    #[test]
    fn refresh_reads_only_what_is_needed() {
        let mut host = fixture_host("proc-vm", "sys-vm");
        let mut errors = Vec::new();
        host.refresh(Needs::STAT | Needs::LOADAVG, &mut |e| {
            errors.push(e.to_string())
        });
        assert!(errors.is_empty(), "{errors:?}");
        assert!(host.has(Needs::STAT));
        assert!(host.has(Needs::LOADAVG));
        assert!(!host.has(Needs::MEMINFO));
    }

    #[test]
    fn missing_sources_are_reported_not_fatal() {
        let mut host = fixture_host("proc-odd", "sys-missing");
        let mut errors = Vec::new();
        host.refresh(Needs::STAT | Needs::LOADAVG | Needs::UPTIME, &mut |e| {
            errors.push(e.to_string())
        });
        assert!(host.has(Needs::STAT));
        assert!(!host.has(Needs::LOADAVG));
        assert_eq!(errors.len(), 2);
    }

    #[test]
    fn pid_scan_counts_states_and_threads() {
        let mut host = fixture_host("proc-vm", "sys-vm");
        host.refresh(Needs::PIDS, &mut |_| {});
        assert!(host.has(Needs::PIDS));
        // fixture pids: 1 S, 2 S, 3 I, 100 R, 101 Z, 102 D, 103 T, 104 S (42 threads)
        assert_eq!(host.procs.total, 8);
        assert_eq!(host.procs.state(b'S'), 3);
        assert_eq!(host.procs.state(b'I'), 1);
        assert_eq!(host.procs.state(b'Z'), 1);
        assert_eq!(host.procs.threads, 7 + 42);
    }
}
