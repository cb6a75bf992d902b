//! Pure parsers for the /proc and /sys files the built-in collectors read
//! (`shared/spec/munin.md` §6), and a reader that loads a file into a reused buffer.
//!
//! Every parser takes the whole file as `&str` and fills a reusable output value; none does I/O.
//! Parsers are lenient the way the kernel's formats demand: unknown extra columns and missing
//! trailing columns are tolerated, a malformed line is skipped and counted.

mod diskstats;
mod meminfo;
mod mountinfo;
mod netdev;
mod simple;
mod stat;

use std::io::Read;
use std::path::{Path, PathBuf};

pub(crate) use diskstats::{Disk, parse_diskstats, whole_disks_by_name};
pub(crate) use meminfo::{Meminfo, parse_meminfo};
pub(crate) use mountinfo::{Mount, parse_mountinfo};
pub(crate) use netdev::{NetDev, parse_netdev};
pub(crate) use simple::{
    FileNr, LoadAvg, Uptime, Vmstat, parse_filenr, parse_loadavg, parse_pid_stat, parse_uptime,
    parse_vmstat,
};
pub(crate) use stat::{CPU_STATES, Stat, parse_stat};

use crate::error::SourceError;

/// Reads files below the configured /proc and /sys roots into one reused buffer.
#[derive(Debug)]
pub(crate) struct ProcReader {
    /// Where procfs is mounted (`/proc`, or a fixture tree in tests).
    proc_root: PathBuf,
    /// Where sysfs is mounted.
    sys_root: PathBuf,
    /// The last file read; reused so a round allocates nothing once warmed up.
    buf: String,
    /// Path scratch space.
    path: PathBuf,
}

impl ProcReader {
    pub(crate) fn new(proc_root: &Path, sys_root: &Path) -> Self {
        ProcReader {
            proc_root: proc_root.to_owned(),
            sys_root: sys_root.to_owned(),
            buf: String::with_capacity(16 * 1024),
            path: PathBuf::new(),
        }
    }

    pub(crate) fn proc_root(&self) -> &Path {
        &self.proc_root
    }

    pub(crate) fn sys_root(&self) -> &Path {
        &self.sys_root
    }

    /// Reads `<proc_root>/<rel>` in one go (files in /proc are consistent only within one read).
    pub(crate) fn proc(&mut self, rel: &str) -> Result<&str, SourceError> {
        self.path.clear();
        self.path.push(&self.proc_root);
        self.path.push(rel);
        read_into(&self.path, &mut self.buf)?;
        Ok(&self.buf)
    }

    /// Reads `<sys_root>/<rel>`.
    pub(crate) fn sys(&mut self, rel: &str) -> Result<&str, SourceError> {
        self.path.clear();
        self.path.push(&self.sys_root);
        self.path.push(rel);
        read_into(&self.path, &mut self.buf)?;
        Ok(&self.buf)
    }

    /// Reads an absolute path.
    pub(crate) fn path(&mut self, path: &Path) -> Result<&str, SourceError> {
        read_into(path, &mut self.buf)?;
        Ok(&self.buf)
    }
}

fn read_into(path: &Path, buf: &mut String) -> Result<(), SourceError> {
    buf.clear();
    let err = |source| SourceError::Read {
        path: path.to_owned(),
        source,
    };
    let mut f = std::fs::File::open(path).map_err(err)?;
    // /proc files report size 0; read until EOF. Non-UTF-8 bytes (names are bytes) are
    // replaced rather than failing the whole file.
    let mut bytes = std::mem::take(buf).into_bytes();
    let res = f.read_to_end(&mut bytes);
    *buf = match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    };
    res.map(|_| ()).map_err(err)
}
