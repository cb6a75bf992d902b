//! `/proc/net/dev` (spec §6.3): per-interface receive and transmit counters.

/// One interface line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct NetDev {
    /// Interface name (never contains `:`, `/` or whitespace).
    pub(crate) name: String,
    /// Receive counters: bytes packets errs drop fifo frame compressed multicast.
    pub(crate) rx: [u64; 8],
    /// Transmit counters: bytes packets errs drop fifo colls carrier compressed.
    pub(crate) tx: [u64; 8],
}

/// Parses `/proc/net/dev` into `out` (cleared first). Returns the number of bad lines.
pub(crate) fn parse_netdev(text: &str, out: &mut Vec<NetDev>) -> usize {
    out.clear();
    let mut bad = 0;
    // Two header lines; every later line is `name: 16 numbers`.
    for line in text.lines().skip(2) {
        if line.trim().is_empty() {
            continue;
        }
        // Split at the first ':'; old kernels glue a large rx_bytes to the colon.
        let Some((name, rest)) = line.split_once(':') else {
            bad += 1;
            continue;
        };
        let name = name.trim();
        let mut values = [0u64; 16];
        let mut n = 0;
        let mut ok = true;
        for tok in rest.split_ascii_whitespace().take(16) {
            match tok.parse() {
                Ok(v) => values[n] = v,
                Err(_) => {
                    ok = false;
                    break;
                }
            }
            n += 1;
        }
        if !ok || n < 16 || name.is_empty() {
            bad += 1;
            continue;
        }
        let mut dev = NetDev {
            name: name.to_owned(),
            ..NetDev::default()
        };
        dev.rx.copy_from_slice(&values[..8]);
        dev.tx.copy_from_slice(&values[8..]);
        out.push(dev);
    }
    bad
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_with_four_interfaces() {
        let mut v = Vec::new();
        let bad = parse_netdev(include_str!("../../tests/data/proc-vm/net/dev"), &mut v);
        assert_eq!(bad, 0);
        let names: Vec<&str> = v.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["lo", "ifb0", "ifb1", "eth0"]);
        assert_eq!(v[3].rx[0], 113312579);
        assert_eq!(v[3].rx[1], 4898);
        assert_eq!(v[3].tx[0], 313400);
        assert_eq!(v[3].tx[1], 3003);
    }

    #[test]
    fn many_interfaces_glued_colon_and_garbage() {
        let mut v = Vec::new();
        let bad = parse_netdev(include_str!("../../tests/data/proc-odd/net/dev"), &mut v);
        // 300 veth interfaces + eth0 (glued colon) + bond0.100 (vlan, dot in name)
        assert_eq!(v.len(), 302);
        let eth0 = v.iter().find(|d| d.name == "eth0").unwrap();
        assert_eq!(eth0.rx[0], 12345678901234);
        assert_eq!(eth0.tx[0], 99);
        let vlan = v.iter().find(|d| d.name == "bond0.100").unwrap();
        assert_eq!(vlan.rx[2], 3);
        // a truncated line and a line without colon
        assert_eq!(bad, 2);
    }

    proptest::proptest! {
        #[test]
        fn any_text_parses_without_panic(text in "\\PC*") {
            let mut v = Vec::new();
            let _ = parse_netdev(&text, &mut v);
        }
    }
}
