//! `/proc/stat`: CPU time per state (total and per CPU), interrupts, context switches,
//! forks, boot time, runnable and blocked tasks (spec §6.1, §6.7).

/// Names of the CPU time columns, in kernel order (spec §6.1).
pub(crate) const CPU_STATES: [&str; 10] = [
    "user",
    "nice",
    "system",
    "idle",
    "iowait",
    "irq",
    "softirq",
    "steal",
    "guest",
    "guest_nice",
];

/// One `cpu` line: ticks (USER_HZ) per state; `len` columns were present.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct CpuTimes {
    /// Ticks per state, in the order of [`CPU_STATES`]; missing columns are 0.
    pub(crate) ticks: [u64; 10],
    /// How many columns the kernel printed (older kernels print fewer).
    pub(crate) len: usize,
}

/// The parts of `/proc/stat` the agent uses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Stat {
    /// The `cpu` line: sum over all CPUs.
    pub(crate) total: Option<CpuTimes>,
    /// `cpuN` lines: CPU number and its times. Offline CPUs are missing; numbers can have gaps.
    pub(crate) cpus: Vec<(u32, CpuTimes)>,
    /// First number of `intr`: interrupts since boot.
    pub(crate) intr: Option<u64>,
    /// `ctxt`: context switches since boot.
    pub(crate) ctxt: Option<u64>,
    /// `btime`: boot time, Unix seconds.
    pub(crate) btime: Option<u64>,
    /// `processes`: forks since boot.
    pub(crate) processes: Option<u64>,
    /// `procs_running`: runnable tasks now.
    pub(crate) procs_running: Option<u64>,
    /// `procs_blocked`: tasks blocked on I/O now.
    pub(crate) procs_blocked: Option<u64>,
    /// Lines that did not parse (counted, skipped).
    pub(crate) bad_lines: usize,
}

/// Parses `/proc/stat` into `out` (cleared first; its vector is reused).
pub(crate) fn parse_stat(text: &str, out: &mut Stat) {
    out.total = None;
    out.cpus.clear();
    out.intr = None;
    out.ctxt = None;
    out.btime = None;
    out.processes = None;
    out.procs_running = None;
    out.procs_blocked = None;
    out.bad_lines = 0;
    for line in text.lines() {
        let mut it = line.split_ascii_whitespace();
        let Some(key) = it.next() else { continue };
        if let Some(n) = key.strip_prefix("cpu") {
            match parse_cpu(it) {
                Some(times) if n.is_empty() => out.total = Some(times),
                Some(times) => match n.parse::<u32>() {
                    Ok(idx) => out.cpus.push((idx, times)),
                    Err(_) => out.bad_lines += 1,
                },
                None => out.bad_lines += 1,
            }
            continue;
        }
        let slot = match key {
            "intr" => &mut out.intr,
            "ctxt" => &mut out.ctxt,
            "btime" => &mut out.btime,
            "processes" => &mut out.processes,
            "procs_running" => &mut out.procs_running,
            "procs_blocked" => &mut out.procs_blocked,
            _ => continue,
        };
        match it.next().and_then(|v| v.parse().ok()) {
            Some(v) => *slot = Some(v),
            None => out.bad_lines += 1,
        }
    }
}

fn parse_cpu<'a>(it: impl Iterator<Item = &'a str>) -> Option<CpuTimes> {
    let mut times = CpuTimes::default();
    for (i, tok) in it.enumerate() {
        if i >= times.ticks.len() {
            break;
        }
        times.ticks[i] = tok.parse().ok()?;
        times.len = i + 1;
    }
    // user, nice, system, idle exist on every 2.6+ kernel.
    (times.len >= 4).then_some(times)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Stat {
        let mut s = Stat::default();
        parse_stat(text, &mut s);
        s
    }

    #[test]
    fn two_cpu_vm() {
        let s = parse(include_str!("../../tests/data/proc-vm/stat"));
        let total = s.total.unwrap();
        assert_eq!(total.len, 10);
        assert_eq!(total.ticks[..4], [6408, 0, 2902, 94721]);
        assert_eq!(s.cpus.len(), 2);
        assert_eq!(s.cpus[1].0, 1);
        assert_eq!(s.cpus[1].1.ticks[0], 4047);
        assert_eq!(s.intr, Some(190376));
        assert_eq!(s.ctxt, Some(360881));
        assert_eq!(s.btime, Some(1795767681));
        assert_eq!(s.processes, Some(8539));
        assert_eq!(s.procs_running, Some(3));
        assert_eq!(s.procs_blocked, Some(0));
        assert_eq!(s.bad_lines, 0);
    }

    #[test]
    fn old_kernel_with_seven_columns_and_cpu_gaps() {
        let s = parse(include_str!("../../tests/data/proc-odd/stat"));
        let total = s.total.unwrap();
        assert_eq!(total.len, 7);
        assert_eq!(total.ticks[7], 0);
        // cpu1 is offline: numbering has a gap.
        let ids: Vec<u32> = s.cpus.iter().map(|c| c.0).collect();
        assert_eq!(ids, vec![0, 2, 3]);
        // the garbage cpu line is counted, not fatal
        assert_eq!(s.bad_lines, 1);
        assert_eq!(s.processes, Some(4294967290));
    }

    #[test]
    fn empty_and_garbage_never_panic() {
        assert_eq!(parse("").total, None);
        let s = parse("cpu x y z\nintr\nctxt nope\n\n\u{0}\n");
        assert_eq!(s.total, None);
        assert_eq!(s.bad_lines, 3);
    }

    proptest::proptest! {
        #[test]
        fn any_text_parses_without_panic(text in "\\PC*") {
            let _ = parse(&text);
        }
    }
}
