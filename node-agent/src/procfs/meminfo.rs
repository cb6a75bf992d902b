//! `/proc/meminfo` (spec §6.2). Values are converted to bytes (1 kB = 1024 bytes).

/// The keys the memory collector and the `memory` plugin use, in bytes; `None` when absent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Meminfo {
    pub(crate) mem_total: Option<u64>,
    pub(crate) mem_free: Option<u64>,
    pub(crate) mem_available: Option<u64>,
    pub(crate) buffers: Option<u64>,
    pub(crate) cached: Option<u64>,
    pub(crate) swap_cached: Option<u64>,
    pub(crate) active: Option<u64>,
    pub(crate) inactive: Option<u64>,
    pub(crate) shmem: Option<u64>,
    pub(crate) slab: Option<u64>,
    pub(crate) s_reclaimable: Option<u64>,
    pub(crate) page_tables: Option<u64>,
    pub(crate) percpu: Option<u64>,
    pub(crate) committed_as: Option<u64>,
    pub(crate) vmalloc_used: Option<u64>,
    pub(crate) mapped: Option<u64>,
    pub(crate) swap_total: Option<u64>,
    pub(crate) swap_free: Option<u64>,
    pub(crate) dirty: Option<u64>,
    pub(crate) writeback: Option<u64>,
    /// 2.4 rmap kernels only; kept because the `memory` plugin prints them when present.
    pub(crate) inact_dirty: Option<u64>,
    pub(crate) inact_laundry: Option<u64>,
    pub(crate) inact_clean: Option<u64>,
    /// Lines that did not parse.
    pub(crate) bad_lines: usize,
}

/// Parses `/proc/meminfo`. Only `Key: <n> kB` lines are taken (like the `memory` plugin's
/// `^(\w+):\s*(\d+)\s+kb` match), so `Active(anon)` and unit-less counts are ignored.
pub(crate) fn parse_meminfo(text: &str, out: &mut Meminfo) {
    *out = Meminfo::default();
    for line in text.lines() {
        let Some((key, rest)) = line.split_once(':') else {
            if !line.trim().is_empty() {
                out.bad_lines += 1;
            }
            continue;
        };
        let mut it = rest.split_ascii_whitespace();
        let (Some(num), Some(unit)) = (it.next(), it.next()) else {
            continue;
        };
        if !unit.eq_ignore_ascii_case("kb") {
            continue;
        }
        let Ok(kb) = num.parse::<u64>() else {
            out.bad_lines += 1;
            continue;
        };
        let bytes = Some(kb.saturating_mul(1024));
        let slot = match key {
            "MemTotal" => &mut out.mem_total,
            "MemFree" => &mut out.mem_free,
            "MemAvailable" => &mut out.mem_available,
            "Buffers" => &mut out.buffers,
            "Cached" => &mut out.cached,
            "SwapCached" => &mut out.swap_cached,
            "Active" => &mut out.active,
            "Inactive" => &mut out.inactive,
            "Shmem" => &mut out.shmem,
            "Slab" => &mut out.slab,
            "SReclaimable" => &mut out.s_reclaimable,
            "PageTables" => &mut out.page_tables,
            "Percpu" => &mut out.percpu,
            "Committed_AS" => &mut out.committed_as,
            "VmallocUsed" => &mut out.vmalloc_used,
            "Mapped" => &mut out.mapped,
            "SwapTotal" => &mut out.swap_total,
            "SwapFree" => &mut out.swap_free,
            "Dirty" => &mut out.dirty,
            "Writeback" => &mut out.writeback,
            "Inact_dirty" => &mut out.inact_dirty,
            "Inact_laundry" => &mut out.inact_laundry,
            "Inact_clean" => &mut out.inact_clean,
            _ => continue,
        };
        *slot = bytes;
    }
    // 2.4 rmap kernels: Inactive is the sum of the three (as the memory plugin does).
    if out.inactive.is_none()
        && let (Some(a), Some(b), Some(c)) = (out.inact_dirty, out.inact_laundry, out.inact_clean)
    {
        out.inactive = Some(a + b + c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_12_vm() {
        let mut m = Meminfo::default();
        parse_meminfo(include_str!("../../tests/data/proc-vm/meminfo"), &mut m);
        assert_eq!(m.mem_total, Some(24684084 * 1024));
        assert_eq!(m.mem_available, Some(24252728 * 1024));
        assert_eq!(m.percpu, Some(712 * 1024));
        assert_eq!(m.swap_total, Some(0));
        assert_eq!(m.inact_dirty, None);
        assert_eq!(m.bad_lines, 0);
    }

    #[test]
    fn old_kernel_without_available_and_rmap_inactive() {
        let mut m = Meminfo::default();
        parse_meminfo(include_str!("../../tests/data/proc-odd/meminfo"), &mut m);
        assert_eq!(m.mem_available, None);
        assert_eq!(m.percpu, None);
        assert_eq!(m.inactive, Some((10 + 20 + 30) * 1024));
        // "HugePages_Total: 0" has no unit and is skipped; only "Broken line" is counted.
        assert_eq!(m.bad_lines, 1);
    }
}
