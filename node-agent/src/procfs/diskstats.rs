//! `/proc/diskstats` (spec §6.4): per block device I/O counters.

/// One device line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Disk {
    pub(crate) major: u32,
    pub(crate) minor: u32,
    /// Kernel device name (`vda`, `nvme0n1p1`, `dm-0`, `cciss/c0d0`).
    pub(crate) name: String,
    /// Fields 1.. of the kernel documentation (iostats.rst): reads completed, reads merged,
    /// sectors read, ms reading, writes completed, writes merged, sectors written, ms writing,
    /// I/Os in progress, ms doing I/O, weighted ms, then discard and flush fields. Missing
    /// trailing fields are 0.
    pub(crate) f: [u64; 17],
    /// How many fields the kernel printed (11, 15 or 17).
    pub(crate) len: usize,
}

impl Disk {
    pub(crate) fn reads(&self) -> u64 {
        self.f[0]
    }
    pub(crate) fn sectors_read(&self) -> u64 {
        self.f[2]
    }
    pub(crate) fn ms_reading(&self) -> u64 {
        self.f[3]
    }
    pub(crate) fn writes(&self) -> u64 {
        self.f[4]
    }
    pub(crate) fn sectors_written(&self) -> u64 {
        self.f[6]
    }
    pub(crate) fn ms_writing(&self) -> u64 {
        self.f[7]
    }
    pub(crate) fn in_progress(&self) -> u64 {
        self.f[8]
    }
    pub(crate) fn ms_io(&self) -> u64 {
        self.f[9]
    }
}

/// Parses `/proc/diskstats` into `out` (cleared first). Returns the number of bad lines.
pub(crate) fn parse_diskstats(text: &str, out: &mut Vec<Disk>) -> usize {
    out.clear();
    let mut bad = 0;
    for line in text.lines() {
        let mut it = line.split_ascii_whitespace();
        let (Some(major), Some(minor), Some(name)) = (it.next(), it.next(), it.next()) else {
            if !line.trim().is_empty() {
                bad += 1;
            }
            continue;
        };
        let (Ok(major), Ok(minor)) = (major.parse(), minor.parse()) else {
            bad += 1;
            continue;
        };
        let mut disk = Disk {
            major,
            minor,
            name: name.to_owned(),
            ..Disk::default()
        };
        let mut ok = true;
        for (i, tok) in it.take(17).enumerate() {
            match tok.parse() {
                Ok(v) => disk.f[i] = v,
                Err(_) => {
                    ok = false;
                    break;
                }
            }
            disk.len = i + 1;
        }
        // 2.6.25+ prints at least the 11 classic fields.
        if !ok || disk.len < 11 {
            bad += 1;
            continue;
        }
        out.push(disk);
    }
    bad
}

/// Which of `names` are whole disks, by the `diskstats` plugin's rule for systems without
/// /sys/block: shortest names first; `<disk>p<N>` and, when the disk name does not end in a
/// digit, `<disk><N>` are partitions of an earlier disk.
pub(crate) fn whole_disks_by_name<'a>(names: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut sorted: Vec<&str> = names.collect();
    sorted.sort_by_key(|n| n.len());
    let mut disks: Vec<&str> = Vec::new();
    for name in sorted {
        let is_part = disks.iter().any(|d| {
            let Some(rest) = name.strip_prefix(d) else {
                return false;
            };
            let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
            rest.strip_prefix('p').is_some_and(digits)
                || (!d.ends_with(|c: char| c.is_ascii_digit()) && digits(rest))
        });
        if !is_part {
            disks.push(name);
        }
    }
    disks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_kernel_6_with_17_fields() {
        let mut v = Vec::new();
        assert_eq!(
            parse_diskstats(include_str!("../../tests/data/proc-vm/diskstats"), &mut v),
            0
        );
        let vda = v.iter().find(|d| d.name == "vda").unwrap();
        assert_eq!(vda.len, 17);
        assert_eq!((vda.major, vda.minor), (254, 0));
        assert_eq!(vda.reads(), 34613);
        assert_eq!(vda.sectors_read(), 2828810);
        assert_eq!(vda.writes(), 11685);
        assert_eq!(vda.sectors_written(), 1991048);
        assert_eq!(vda.ms_io(), 7764);
        assert_eq!(v.len(), 10);
    }

    #[test]
    fn old_kernel_11_fields_and_odd_names() {
        let mut v = Vec::new();
        let bad = parse_diskstats(include_str!("../../tests/data/proc-odd/diskstats"), &mut v);
        assert_eq!(bad, 1);
        assert!(v.iter().all(|d| d.len == 11 || d.len == 15));
        assert!(v.iter().any(|d| d.name == "cciss/c0d0"));
        let names = whole_disks_by_name(v.iter().map(|d| d.name.as_str()));
        assert_eq!(
            names,
            ["sda", "sdb", "dm-0", "nvme0n1", "mmcblk0", "cciss/c0d0"]
        );
    }
}
