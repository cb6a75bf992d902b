//! File system usage: mount table + `statvfs` (spec §6.5).
//!
//! Sent: `fs.<mount>.size_bytes`, `.free_bytes`, `.avail_bytes`, `.used_percent` (used /
//! (used + available to non-root), like df), `.inodes`, `.inodes_free`, where `<mount>` is the
//! mount point escaped reversibly (`/` → `_`, `/var/lib` → `_var_lib`). Pseudo and network file
//! systems are skipped by default. Munin plugins `df` and `df_inode`: the stock plugins, which
//! run `df -P -l`; their mount selection (including df's de-duplication) is reproduced here.

use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};

use super::emit::escape_component;
use super::{BuiltinPlugin, Collector, Emitter, Filters, Host, Needs, PluginCtx, clean_fieldname};
use crate::procfs::Mount;
use crate::statfs::FsStat;

pub(super) const COLLECTOR: Collector = Collector {
    name: "filesystem",
    doc: "fs.<mount>.size_bytes, .free_bytes, .avail_bytes, .used_percent, .inodes, .inodes_free (mount point escaped: / → _)",
    needs: Needs::MOUNTS,
    emit,
};

/// Whether `path` is `prefix` or below it.
fn under(path: &Path, prefix: &str) -> bool {
    path.starts_with(prefix)
}

/// Network file systems by source (`host:/export`, `//server/share`).
fn remote_source(m: &Mount) -> bool {
    m.source.contains(':') || m.source.starts_with("//")
}

/// Mount points the `filesystem` collector stats this round (last mount wins for a path that
/// is mounted over).
pub(crate) fn collector_mounts(mounts: &[Mount], filters: &Filters) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for m in mounts {
        if filters.fs_types_exclude.contains(&m.fstype)
            || m.fstype.starts_with("fuse.") && remote_source(m)
            || remote_source(m)
            || filters
                .fs_mounts_exclude
                .iter()
                .any(|p| under(&m.mount_point, p))
        {
            continue;
        }
        if !out.contains(&m.mount_point) {
            out.push(m.mount_point.clone());
        }
    }
    out
}

fn emit(host: &Host, _: &Filters, e: &mut Emitter<'_>) {
    for (path, st) in &host.fs {
        if st.blocks == 0 {
            continue;
        }
        let name = escape_component(&String::from_utf8_lossy(path.as_os_str().as_bytes()), true);
        let f = st.frsize as f64;
        let used = st.blocks.saturating_sub(st.bfree);
        e.gauge(format_args!("fs.{name}.size_bytes"), st.blocks as f64 * f);
        e.gauge(format_args!("fs.{name}.free_bytes"), st.bfree as f64 * f);
        e.gauge(format_args!("fs.{name}.avail_bytes"), st.bavail as f64 * f);
        let denom = used + st.bavail;
        if denom > 0 {
            e.gauge(
                format_args!("fs.{name}.used_percent"),
                used as f64 * 100.0 / denom as f64,
            );
        }
        if st.files > 0 {
            e.gauge(format_args!("fs.{name}.inodes"), st.files as f64);
            e.gauge(format_args!("fs.{name}.inodes_free"), st.ffree as f64);
        }
    }
}

/// Which plugin: `df` (space) or `df_inode` (inodes). They exclude different types.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Space,
    Inodes,
}

/// Types the stock plugins pass to `df -x` (their default `exclude`).
const DF_EXCLUDE: &[&str] = &[
    "none",
    "unknown",
    "rootfs",
    "iso9660",
    "squashfs",
    "udf",
    "romfs",
    "ramfs",
    "debugfs",
    "cgroup_root",
    "devtmpfs",
];
const DF_INODE_EXCLUDE: &[&str] = &[
    "none", "unknown", "iso9660", "squashfs", "udf", "romfs", "ramfs", "vfat", "debugfs", "nilfs2",
    "rootfs", "reiserfs",
];
/// GNU df's "dummy" types, hidden without `-a`.
const DF_DUMMY: &[&str] = &[
    "autofs",
    "proc",
    "subfs",
    "debugfs",
    "devpts",
    "fusectl",
    "fuse.portal",
    "mqueue",
    "rpc_pipefs",
    "sysfs",
    "devfs",
    "kernfs",
    "ignore",
];
/// GNU df's remote types (`-l` hides them).
const DF_REMOTE_TYPES: &[&str] = &[
    "acfs",
    "afs",
    "coda",
    "auristorfs",
    "fhgfs",
    "gpfs",
    "ibrix",
    "ocfs2",
    "vxfs",
];

fn df_candidate(m: &Mount, mode: Mode) -> bool {
    let excluded = match mode {
        Mode::Space => DF_EXCLUDE,
        Mode::Inodes => DF_INODE_EXCLUDE,
    };
    let remote = m.source.contains(':')
        || (m.source.starts_with("//") && ["smbfs", "smb3", "cifs"].contains(&m.fstype.as_str()))
        || DF_REMOTE_TYPES.contains(&m.fstype.as_str())
        || m.source == "-hosts";
    !(remote || DF_DUMMY.contains(&m.fstype.as_str()) || excluded.contains(&m.fstype.as_str()))
}

/// Mount points the `df` and `df_inode` plugins need statted (both modes' candidates).
pub(crate) fn df_mounts(mounts: &[Mount]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for m in mounts {
        if (df_candidate(m, Mode::Space) || df_candidate(m, Mode::Inodes))
            && !out.contains(&m.mount_point)
        {
            out.push(m.mount_point.clone());
        }
    }
    out
}

/// One line of `df -P -l` output.
struct DfRow<'a> {
    mount: &'a Mount,
    st: FsStat,
}

/// GNU df's selection: candidates in mount order, one entry per device (`st_dev`) with
/// coreutils' preference rules, zero-size file systems hidden.
fn df_rows<'a>(host: &'a Host, mode: Mode) -> Vec<DfRow<'a>> {
    let mut rows: Vec<DfRow<'a>> = Vec::new();
    for m in host.mounts.iter().filter(|m| df_candidate(m, mode)) {
        let Some((_, st)) = host.fs.iter().find(|(p, _)| *p == m.mount_point) else {
            continue;
        };
        match rows.iter_mut().find(|r| r.st.dev == st.dev) {
            Some(seen) => {
                let seen_m = seen.mount;
                let target_nearer_root =
                    seen_m.mount_point.as_os_str().len() > m.mount_point.as_os_str().len();
                let source_below_root = seen_m.root.len() < m.root.len();
                if (m.source.contains('/') && !seen_m.source.contains('/'))
                    || (target_nearer_root && !source_below_root)
                    || (seen_m.source != m.source && seen_m.mount_point == m.mount_point)
                {
                    *seen = DfRow { mount: m, st: *st };
                }
            }
            None => rows.push(DfRow { mount: m, st: *st }),
        }
    }
    rows.retain(|r| r.st.blocks != 0);
    rows
}

/// df's numbers for a row: (used, available) in 1K blocks, rounded up like df -P.
fn df_used_avail(st: &FsStat, mode: Mode) -> (u64, u64) {
    match mode {
        Mode::Space => {
            let k =
                |blocks: u64| (u128::from(blocks) * u128::from(st.frsize)).div_ceil(1024) as u64;
            (k(st.blocks.saturating_sub(st.bfree)), k(st.bavail))
        }
        Mode::Inodes => (st.files.saturating_sub(st.ffree), st.ffree),
    }
}

/// Field name and label the stock plugin derives from df's columns. Mount points with
/// whitespace are cut at the first blank, as the plugin's `split /\s+/` does.
fn df_names(row: &DfRow<'_>) -> Option<(String, String)> {
    let mount = String::from_utf8_lossy(row.mount.mount_point.as_os_str().as_bytes()).into_owned();
    let label = mount.split_whitespace().next().unwrap_or("").to_owned();
    let source = row.mount.source.split_whitespace().next().unwrap_or("");
    // `next if m{//}` skips any df line containing "//"; Debian's plugin-conf.d sets
    // `env.exclude_re ^/run/user` for df*.
    if mount.contains("//") || source.contains("//") {
        return None;
    }
    if source.starts_with("/run/user") || label.starts_with("/run/user") {
        return None;
    }
    let name = if ["tmpfs", "none", "udev", "simfs"].contains(&source) {
        label.clone()
    } else {
        source.to_owned()
    };
    Some((clean_fieldname(&name), label))
}

pub(super) const DF_PLUGIN: BuiltinPlugin = BuiltinPlugin {
    name: "df",
    doc: "Disk usage in percent per file system (stock `df` plugin), GAUGE",
    needs: Needs::MOUNTS,
    instances: None,
    multigraph: false,
    config: df_config,
    fetch: df_fetch,
};

pub(super) const DF_INODE_PLUGIN: BuiltinPlugin = BuiltinPlugin {
    name: "df_inode",
    doc: "Inode usage in percent per file system (stock `df_inode` plugin), GAUGE",
    needs: Needs::MOUNTS,
    instances: None,
    multigraph: false,
    config: df_inode_config,
    fetch: df_inode_fetch,
};

fn df_config(ctx: &mut PluginCtx<'_>, _: &str, out: &mut String) {
    out.push_str("graph_title Disk usage in percent\n");
    config_common(ctx, Mode::Space, out);
}

fn df_inode_config(ctx: &mut PluginCtx<'_>, _: &str, out: &mut String) {
    out.push_str("graph_title Inode usage in percent\n");
    config_common(ctx, Mode::Inodes, out);
}

fn config_common(ctx: &mut PluginCtx<'_>, mode: Mode, out: &mut String) {
    out.push_str(
        "graph_args --upper-limit 100 -l 0\ngraph_vlabel %\ngraph_scale no\ngraph_category disk\n",
    );
    for row in df_rows(ctx.host, mode) {
        if let Some((name, label)) = df_names(&row) {
            let _ = writeln!(
                out,
                "{name}.label {label}\n{name}.warning 92\n{name}.critical 98"
            );
        }
    }
}

fn df_fetch(ctx: &mut PluginCtx<'_>, _: &str, out: &mut String) {
    fetch_common(ctx, Mode::Space, out);
}

fn df_inode_fetch(ctx: &mut PluginCtx<'_>, _: &str, out: &mut String) {
    fetch_common(ctx, Mode::Inodes, out);
}

fn fetch_common(ctx: &mut PluginCtx<'_>, mode: Mode, out: &mut String) {
    for row in df_rows(ctx.host, mode) {
        let Some((name, _)) = df_names(&row) else {
            continue;
        };
        let (used, avail) = df_used_avail(&row.st, mode);
        let pct = if used == 0 {
            0.0
        } else {
            used as f64 / (used + avail) as f64 * 100.0
        };
        let _ = write!(out, "{name}.value ");
        super::perl_number(out, pct);
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::tests::fixture_host;
    use crate::collect::{PluginState, emit::LineFormat};
    use crate::rate::RateTracker;

    fn st(dev: u64, blocks: u64, bfree: u64, bavail: u64) -> FsStat {
        FsStat {
            dev,
            frsize: 4096,
            blocks,
            bfree,
            bavail,
            files: 100,
            ffree: 40,
        }
    }

    /// The fixture mount table with statvfs numbers as on the capture machine.
    fn vm_host() -> Host {
        let mut host = fixture_host("proc-vm", "sys-vm");
        host.refresh(Needs::MOUNTS, &mut |_| {});
        let fs = [
            ("/dev/shm", st(23, 6171021, 6171021, 6171021)),
            ("/", st(0xfe00, 66053021, 62997747, 20766198)),
            ("/mnt/sandboxing/model_tools_env/v1/python", st(25, 1, 1, 1)),
            ("/sys/fs/cgroup", st(28, 3085510, 3085510, 3085510)),
            ("/dev", st(6, 3083615, 3083615, 3083615)),
        ];
        host.fs = fs.iter().map(|(p, s)| (PathBuf::from(p), *s)).collect();
        host
    }

    #[test]
    fn df_selects_like_gnu_df_and_names_like_the_stock_plugin() {
        let mut host = vm_host();
        let state = PluginState::default();
        let mut ctx = PluginCtx {
            host: &mut host,
            master_ip: "",
            state: &state,
            now: 0,
        };
        let mut out = String::new();
        df_config(&mut ctx, "", &mut out);
        // Transcript T17 (real munin-node on the same kind of machine) plus the sandbox mount.
        assert_eq!(
            out,
            "graph_title Disk usage in percent\ngraph_args --upper-limit 100 -l 0\ngraph_vlabel %\ngraph_scale no\ngraph_category disk\n\
             _dev_shm.label /dev/shm\n_dev_shm.warning 92\n_dev_shm.critical 98\n\
             _dev_vda.label /\n_dev_vda.warning 92\n_dev_vda.critical 98\n\
             model_tools_unavailable.label /mnt/sandboxing/model_tools_env/v1/python\nmodel_tools_unavailable.warning 92\nmodel_tools_unavailable.critical 98\n\
             _sys_fs_cgroup.label /sys/fs/cgroup\n_sys_fs_cgroup.warning 92\n_sys_fs_cgroup.critical 98\n"
        );
        let mut out = String::new();
        df_fetch(&mut ctx, "", &mut out);
        // used = (66053021-62997747)*4 = 12221096 K, avail = 20766198*4 = 83064792 K (the
        // figures `df -P` printed on the capture machine); the stock formula evaluated by perl:
        // perl -e 'print 12221096/(12221096+83064792)*100' → 12.8257145486224
        assert!(out.contains("_dev_vda.value 12.8257145486224\n"), "{out}");
        assert!(out.starts_with("_dev_shm.value 0\n"));
    }

    #[test]
    fn df_inode_keeps_devtmpfs() {
        let mut host = vm_host();
        let state = PluginState::default();
        let mut ctx = PluginCtx {
            host: &mut host,
            master_ip: "",
            state: &state,
            now: 0,
        };
        let mut out = String::new();
        df_inode_fetch(&mut ctx, "", &mut out);
        assert!(out.contains("devtmpfs.value 60\n"), "{out}");
    }

    #[test]
    fn overmounted_and_bind_mounted_devices_are_shown_once() {
        let mounts = [
            ("/", "/", "/dev/sda1", (8, 1)),
            ("/srv/data", "/data", "/dev/sda1", (8, 1)),
        ];
        let mut host = fixture_host("proc-vm", "sys-vm");
        host.mounts = mounts
            .iter()
            .map(|(mp, root, src, dev)| Mount {
                dev: *dev,
                root: (*root).into(),
                mount_point: PathBuf::from(mp),
                fstype: "ext4".into(),
                source: (*src).into(),
            })
            .collect();
        host.fs = vec![
            (PathBuf::from("/"), st(1, 10, 5, 5)),
            (PathBuf::from("/srv/data"), st(1, 10, 5, 5)),
        ];
        let rows = df_rows(&host, Mode::Space);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].mount.mount_point, PathBuf::from("/"));
    }

    #[test]
    fn collector_skips_pseudo_and_network_and_escapes_names() {
        let mut host = fixture_host("proc-odd", "sys-vm");
        host.refresh(Needs::MOUNTS, &mut |_| {});
        let filters = Filters::from_config(&crate::Config::default());
        let picked = collector_mounts(&host.mounts, &filters);
        assert_eq!(
            picked,
            ["/", "/mnt/my disk", "/mnt/tab\there", "/mnt/back\\slash"]
                .map(PathBuf::from)
                .to_vec()
        );
        host.fs = vec![(PathBuf::from("/mnt/my disk"), st(2, 100, 50, 25))];
        let mut rates = RateTracker::new(30.0);
        let mut out = String::new();
        emit(
            &host,
            &filters,
            &mut Emitter::new(&mut rates, 0.0, "p", LineFormat::Statsd, &mut out),
        );
        assert!(
            out.contains("p.fs._mnt_my%20disk.size_bytes:409600|g\n"),
            "{out}"
        );
        // used 50, avail 25 → 66.67 %
        assert!(out.contains("p.fs._mnt_my%20disk.used_percent:66.66666666666667|g\n"));
        assert!(out.contains("p.fs._mnt_my%20disk.inodes_free:40|g\n"));
    }
}
