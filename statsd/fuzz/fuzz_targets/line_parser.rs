//! The line parser on arbitrary datagrams (decoded as UDP and TCP decode them), in all
//! four modes. Checks: no panic; every value segment is exactly one sample or one bad line
//! (Etsy mode); sanitised keys only hold `[A-Za-z0-9_.;=-]`; timers never carry NaN;
//! and the one-pass fast path of `packet` agrees with the full parser line by line.
#![no_main]

use charcoal_statsd::{Kind, LineHandler, LineParser, ParseOptions, Sample};
use libfuzzer_sys::fuzz_target;

/// A sample as (kind, value bits, raw, weight bits): NaN compares equal to itself.
type Seen = (Kind, u64, String, u64);

/// Every event: (key, sample) or (segment, None) for a bad line.
#[derive(Default)]
struct Log(Vec<(String, Option<Seen>)>);

impl LineHandler for Log {
    fn sample(&mut self, key: &str, s: Sample<'_>) {
        let v = (
            s.kind,
            s.value.to_bits(),
            s.raw.to_string(),
            s.weight.to_bits(),
        );
        self.0.push((key.to_string(), Some(v)));
    }
    fn bad(&mut self, _line: &str, segment: &str) {
        self.0.push((segment.to_string(), None));
    }
}

fn clean(key: &str) -> bool {
    key.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b';' | b'=' | b'-'))
}

fn check(text: &str, opts: ParseOptions) {
    let mut fast = Log::default();
    let n = LineParser::new(opts).packet(text, &mut fast);
    let mut full = Log::default();
    let mut p = LineParser::new(opts);
    let mut lines = 0;
    let mut segments = 0;
    for line in text.split('\n').filter(|l| !l.is_empty()) {
        lines += 1;
        p.line(line, &mut full);
        let body = line.split("|#").next().unwrap_or("");
        segments += body.split(':').count().saturating_sub(1).max(1);
    }
    assert_eq!(n, lines);
    assert_eq!(
        fast.0, full.0,
        "fast path and full parser differ on {text:?}"
    );
    if !opts.dogstatsd {
        assert_eq!(fast.0.len(), segments, "{text:?}");
    }
    for (key, s) in &fast.0 {
        if let Some((kind, value, _, weight)) = s {
            if opts.sanitize {
                assert!(clean(key), "{key:?}");
            }
            assert!(!(*kind == Kind::Timer && f64::from_bits(*value).is_nan()));
            let w = f64::from_bits(*weight);
            assert!(w >= 0.0 || w.is_nan());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let utf8 = String::from_utf8_lossy(data);
    let ascii: String = data.iter().map(|&b| char::from(b & 0x7f)).collect();
    for text in [&*utf8, &*ascii] {
        for sanitize in [true, false] {
            for dogstatsd in [false, true] {
                check(
                    text,
                    ParseOptions {
                        sanitize,
                        dogstatsd,
                    },
                );
            }
        }
    }
});
