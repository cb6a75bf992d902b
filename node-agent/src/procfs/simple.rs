//! Small one-line or key-value files: loadavg, uptime, vmstat, file-nr, `/proc/<pid>/stat`
//! (spec §6.6–6.10).

/// `/proc/loadavg`.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct LoadAvg {
    /// 1-, 5- and 15-minute load.
    pub(crate) load: [f64; 3],
    /// The 5-minute value exactly as the kernel printed it (the `load` plugin relays the text).
    pub(crate) five_text: String,
}

pub(crate) fn parse_loadavg(text: &str, out: &mut LoadAvg) -> bool {
    let mut it = text.split_ascii_whitespace();
    let mut load = [0.0; 3];
    for (i, slot) in load.iter_mut().enumerate() {
        let Some(tok) = it.next() else { return false };
        let Ok(v) = tok.parse::<f64>() else {
            return false;
        };
        if !v.is_finite() {
            return false;
        }
        *slot = v;
        if i == 1 {
            out.five_text.clear();
            out.five_text.push_str(tok);
        }
    }
    out.load = load;
    true
}

/// `/proc/uptime`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Uptime {
    /// Seconds since boot.
    pub(crate) seconds: f64,
}

pub(crate) fn parse_uptime(text: &str) -> Option<Uptime> {
    let v: f64 = text.split_ascii_whitespace().next()?.parse().ok()?;
    (v.is_finite() && v >= 0.0).then_some(Uptime { seconds: v })
}

/// The `/proc/vmstat` counters the agent uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Vmstat {
    /// Pages swapped in.
    pub(crate) pswpin: Option<u64>,
    /// Pages swapped out.
    pub(crate) pswpout: Option<u64>,
    /// KiB paged in.
    pub(crate) pgpgin: Option<u64>,
    /// KiB paged out.
    pub(crate) pgpgout: Option<u64>,
    /// Page faults.
    pub(crate) pgfault: Option<u64>,
    /// Major page faults.
    pub(crate) pgmajfault: Option<u64>,
    /// OOM kills (kernel ≥ 4.13).
    pub(crate) oom_kill: Option<u64>,
}

pub(crate) fn parse_vmstat(text: &str, out: &mut Vmstat) {
    *out = Vmstat::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(' ') else {
            continue;
        };
        let slot = match key {
            "pswpin" => &mut out.pswpin,
            "pswpout" => &mut out.pswpout,
            "pgpgin" => &mut out.pgpgin,
            "pgpgout" => &mut out.pgpgout,
            "pgfault" => &mut out.pgfault,
            "pgmajfault" => &mut out.pgmajfault,
            "oom_kill" => &mut out.oom_kill,
            _ => continue,
        };
        *slot = value.trim().parse().ok();
    }
}

/// `/proc/sys/fs/file-nr`: allocated, unused, maximum file handles.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct FileNr {
    pub(crate) allocated: u64,
    pub(crate) unused: u64,
    pub(crate) max: u64,
}

pub(crate) fn parse_filenr(text: &str) -> Option<FileNr> {
    let mut it = text.split_ascii_whitespace().map(|t| t.parse::<u64>().ok());
    Some(FileNr {
        allocated: it.next()??,
        unused: it.next()??,
        max: it.next()??,
    })
}

/// What the agent needs from `/proc/<pid>/stat`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PidStat {
    /// State letter: R S D Z T t X I P W.
    pub(crate) state: u8,
    /// Threads in the process (field 20).
    pub(crate) threads: u64,
}

/// Parses `/proc/<pid>/stat`. The command name is in parentheses and may itself contain
/// spaces and `)`, so the fields start after the **last** `)` (spec §6.7).
pub(crate) fn parse_pid_stat(text: &str) -> Option<PidStat> {
    let close = text.rfind(')')?;
    let mut it = text[close + 1..].split_ascii_whitespace();
    let state = it.next()?;
    if state.len() != 1 {
        return None;
    }
    // fields after the state: ppid(4) ... num_threads(20) is the 17th after the state.
    let threads = it.nth(16)?.parse().ok()?;
    Some(PidStat {
        state: state.as_bytes()[0],
        threads,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loadavg() {
        let mut l = LoadAvg::default();
        assert!(parse_loadavg(
            include_str!("../../tests/data/proc-vm/loadavg"),
            &mut l
        ));
        assert_eq!(l.load, [0.09, 0.16, 0.09]);
        assert_eq!(l.five_text, "0.16");
        let mut l = LoadAvg::default();
        assert!(!parse_loadavg("0.1 x", &mut l));
        assert!(!parse_loadavg("", &mut l));
        assert!(!parse_loadavg("nan nan nan", &mut l));
    }

    #[test]
    fn uptime() {
        let u = parse_uptime(include_str!("../../tests/data/proc-vm/uptime")).unwrap();
        assert_eq!(u.seconds, 524.85);
        assert!(parse_uptime("").is_none());
        assert!(parse_uptime("-3 1").is_none());
    }

    #[test]
    fn vmstat() {
        let mut v = Vmstat::default();
        parse_vmstat(include_str!("../../tests/data/proc-vm/vmstat"), &mut v);
        assert_eq!(v.pswpin, Some(0));
        assert_eq!(v.pgpgin, Some(2806045));
        assert_eq!(v.pgfault, Some(4945159));
        assert_eq!(v.oom_kill, Some(0));
    }

    #[test]
    fn filenr() {
        let f = parse_filenr(include_str!("../../tests/data/proc-vm/sys/fs/file-nr")).unwrap();
        assert_eq!(
            f,
            FileNr {
                allocated: 524,
                unused: 0,
                max: 2466170
            }
        );
        assert!(parse_filenr("1 2").is_none());
    }

    #[test]
    fn pid_stat_with_spaces_and_parens_in_the_name() {
        let s = parse_pid_stat(include_str!("../../tests/data/proc-odd/4242/stat")).unwrap();
        assert_eq!(s.state, b'S');
        assert_eq!(s.threads, 7);
        let k = parse_pid_stat(include_str!("../../tests/data/proc-vm/2/stat")).unwrap();
        assert_eq!(k.state, b'S');
        assert_eq!(k.threads, 1);
        assert!(parse_pid_stat("12 (x) R 1").is_none());
        assert!(parse_pid_stat("no parens").is_none());
    }

    proptest::proptest! {
        #[test]
        fn pid_stat_never_panics(text in "\\PC*") {
            let _ = parse_pid_stat(&text);
            let _ = parse_filenr(&text);
            let _ = parse_uptime(&text);
            let mut l = LoadAvg::default();
            let _ = parse_loadavg(&text, &mut l);
        }
    }
}
