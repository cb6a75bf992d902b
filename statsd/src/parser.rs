//! The StatsD line parser: a pure function from text to samples, splitting lines exactly
//! the way Etsy StatsD does (spec §2–§5), with an optional DogStatsD dialect (§15.1).
//!
//! No allocation per line: keys that need building (tags, sanitising) go into buffers the
//! parser owns and reuses; everything else borrows from the input.

use crate::jsnum::{is_js_space, js_is_number, js_number, js_trim, small_integer};

/// What a metric type letter turns into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `c`, and every type letter Etsy does not know (`C`, `h`, `d`, `foo`...).
    Counter,
    /// `ms` (and `h`/`d` in DogStatsD mode).
    Timer,
    /// `g`.
    Gauge,
    /// `s`.
    Set,
}

/// One valid value segment of a line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample<'a> {
    /// Metric type.
    pub kind: Kind,
    /// `Number(value)` (0 for sets, which use `raw`).
    pub value: f64,
    /// The value text as received (set member; gauge delta test looks at its first byte).
    pub raw: &'a str,
    /// `1 / sample_rate` (1 without a rate; Infinity for `@0`).
    pub weight: f64,
}

impl Sample<'_> {
    /// Whether a gauge sample is a delta candidate (raw value starts with `+` or `-`).
    pub fn signed(&self) -> bool {
        matches!(self.raw.as_bytes().first(), Some(b'+' | b'-'))
    }
}

/// DogStatsD non-metric datagrams (DogStatsD mode only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DogKind {
    /// `_e{...}` event.
    Event,
    /// `_sc|...` service check.
    ServiceCheck,
}

/// Receives what the parser finds.
pub trait LineHandler {
    /// A valid segment for `key` (sanitised, tags attached).
    fn sample(&mut self, key: &str, sample: Sample<'_>);
    /// An invalid segment (Etsy's `bad_lines_seen`); `segment` is the value segment text.
    fn bad(&mut self, line: &str, segment: &str);
    /// A DogStatsD event or service check (DogStatsD mode only).
    fn dog(&mut self, _kind: DogKind) {}
}

/// Parser options (from [`crate::Config`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseOptions {
    /// `key_name_sanitize`.
    pub sanitize: bool,
    /// `dogstatsd`.
    pub dogstatsd: bool,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            sanitize: true,
            dogstatsd: false,
        }
    }
}

/// A reusable line parser. One per worker.
#[derive(Debug, Default)]
pub struct LineParser {
    opts: ParseOptions,
    raw_key: String,
    key: String,
    tag_spans: Vec<(usize, usize)>,
    pending: Vec<(usize, usize)>,
}

impl LineParser {
    /// A parser with the given options.
    pub fn new(opts: ParseOptions) -> Self {
        LineParser {
            opts,
            ..LineParser::default()
        }
    }

    /// Parses one packet: splits on `\n`, skips empty lines, returns the number of
    /// non-empty lines (Etsy's `metrics_received`).
    ///
    /// Each line is first tried by [`simple_line`], one pass over its bytes that handles
    /// the everyday shape (`name:value|type[|@rate]`, clean name, no tags); anything else
    /// goes through [`LineParser::line`], which implements every quirk.
    pub fn packet(&mut self, text: &str, h: &mut impl LineHandler) -> u64 {
        let bytes = text.as_bytes();
        let mut lines = 0;
        let mut start = 0;
        while start < bytes.len() {
            let end = match simple_line(text, start) {
                Simple::Line { end, name, sample } => {
                    h.sample(name, sample);
                    end
                }
                Simple::Empty { end } => {
                    start = end + 1;
                    continue;
                }
                Simple::Other { scanned } => {
                    let end = bytes[scanned..]
                        .iter()
                        .position(|&b| b == b'\n')
                        .map_or(bytes.len(), |i| scanned + i);
                    self.line(&text[start..end], h);
                    end
                }
            };
            lines += 1;
            start = end + 1;
        }
        lines
    }

    /// Parses one line (no `\n` inside).
    pub fn line(&mut self, line: &str, h: &mut impl LineHandler) {
        let dog = self.opts.dogstatsd;
        if dog {
            if line.starts_with("_e{") {
                h.dog(DogKind::Event);
                return;
            }
            if line.starts_with("_sc|") {
                h.dog(DogKind::ServiceCheck);
                return;
            }
        }
        // 1. Tags: part 1 of a split on "|#"; later parts are ignored.
        let (body, mut tags) = match line.find("|#") {
            Some(i) => {
                let rest = &line[i + 2..];
                (&line[..i], rest.find("|#").map_or(rest, |j| &rest[..j]))
            }
            None => (line, ""),
        };
        if dog && let Some(j) = tags.find('|') {
            // DogStatsD fields after the tags (`|c:...`, `|T...`).
            tags = &tags[..j];
        }
        // 2. Key: element 0 of a split on ':'.
        let (name, values) = match body.find(':') {
            Some(i) => (&body[..i], Some(&body[i + 1..])),
            None => (body, None),
        };
        let key = build_key(
            name,
            tags,
            self.opts,
            &mut self.raw_key,
            &mut self.key,
            &mut self.tag_spans,
        );
        // 3. No ':' → the single segment "1", which has no type: one bad line.
        let Some(mut values) = values else {
            h.bad(line, "1");
            return;
        };
        if dog {
            values = strip_dog_fields(values);
        }
        self.pending.clear();
        let base = values.as_ptr() as usize;
        for seg in values.split(':') {
            let mut fields = seg.split('|');
            let f0 = fields.next().unwrap_or("");
            let f1 = fields.next();
            let f2 = fields.next();
            let Some(ty) = f1 else {
                if dog {
                    let start = seg.as_ptr() as usize - base;
                    self.pending.push((start, start + seg.len()));
                } else {
                    h.bad(line, seg);
                }
                continue;
            };
            let weight = match f2 {
                None => Some(1.0),
                Some(rate) => sample_weight(rate),
            };
            let kind = kind_of(ty, dog);
            let Some(weight) = weight else {
                h.bad(line, seg);
                for &(s, e) in &self.pending {
                    h.bad(line, &values[s..e]);
                }
                self.pending.clear();
                continue;
            };
            for &(s, e) in &self.pending {
                let v = &values[s..e];
                // Value packing is not defined for sets.
                if kind != Kind::Set && valid_value(ty, v) {
                    h.sample(key, make_sample(kind, v, weight));
                } else {
                    h.bad(line, v);
                }
            }
            self.pending.clear();
            if valid_value(ty, f0) {
                h.sample(key, make_sample(kind, f0, weight));
            } else {
                h.bad(line, seg);
            }
        }
        for &(s, e) in &self.pending {
            h.bad(line, &values[s..e]);
        }
    }
}

/// What [`simple_line`] made of the line starting at some offset.
enum Simple<'a> {
    /// An empty line ending at `end` (the `\n` or the end of the packet).
    Empty { end: usize },
    /// A line of the everyday shape, ending at `end`, with its one valid sample.
    Line {
        end: usize,
        name: &'a str,
        sample: Sample<'a>,
    },
    /// Anything else: the full parser decides. No `\n` before `scanned`.
    Other { scanned: usize },
}

/// Byte classes of the one-pass scan.
const C_OTHER: u8 = 0;
const C_CLEAN: u8 = 1;
const C_COLON: u8 = 2;
const C_BAR: u8 = 3;
/// `\n` and `#` (tags, or a byte the full parser has to look at).
const C_STOP: u8 = 4;

static CLASS: [u8; 256] = {
    let mut t = [C_OTHER; 256];
    let mut i = 0;
    while i < 256 {
        if CLEAN[i] {
            t[i] = C_CLEAN;
        }
        i += 1;
    }
    t[b':' as usize] = C_COLON;
    t[b'|' as usize] = C_BAR;
    t[b'\n' as usize] = C_STOP;
    t[b'#' as usize] = C_STOP;
    t
};

/// The fast path of [`LineParser::packet`]: `name:value|type` or `name:value|type|@rate`
/// where the name only holds `[A-Za-z0-9_.;=-]` (so sanitising changes nothing), the
/// line has one `:`, no `#`, exactly the type `c`, `ms`, `g` or `s`, a valid value and a
/// valid rate. Such a line means one sample in every mode (Etsy or DogStatsD, sanitising
/// or not), exactly as [`LineParser::line`] would give it; the proptest
/// `simple_lines_agree_with_the_full_parser` holds the two together. Anything else is
/// `Other`, and nothing has been emitted for it.
#[inline]
fn simple_line(text: &str, start: usize) -> Simple<'_> {
    let b = text.as_bytes();
    let n = b.len();
    let mut i = start;
    while i < n && CLASS[b[i] as usize] == C_CLEAN {
        i += 1;
    }
    if i == n || b[i] != b':' {
        if i == start && (i == n || b[i] == b'\n') {
            return Simple::Empty { end: i };
        }
        return Simple::Other { scanned: i };
    }
    let colon = i;
    i += 1;
    while i < n && CLASS[b[i] as usize] <= C_CLEAN {
        i += 1;
    }
    if i == n || b[i] != b'|' {
        return Simple::Other { scanned: i };
    }
    let bar = i;
    i += 1;
    while i < n && CLASS[b[i] as usize] <= C_CLEAN {
        i += 1;
    }
    let ty_end = i;
    let mut rate = None;
    if i < n && b[i] == b'|' {
        i += 1;
        let rate_start = i;
        while i < n && CLASS[b[i] as usize] <= C_CLEAN {
            i += 1;
        }
        rate = Some(rate_start);
    }
    if i < n && b[i] != b'\n' {
        return Simple::Other { scanned: i };
    }
    let end = i;
    let kind = match &b[bar + 1..ty_end] {
        b"c" => Kind::Counter,
        b"ms" => Kind::Timer,
        b"g" => Kind::Gauge,
        b"s" => Kind::Set,
        _ => return Simple::Other { scanned: end },
    };
    let weight = match rate {
        None => 1.0,
        Some(r) => match sample_weight(&text[r..end]) {
            Some(w) => w,
            None => return Simple::Other { scanned: end },
        },
    };
    let raw = &text[colon + 1..bar];
    let value = if kind == Kind::Set {
        0.0
    } else if let Some(v) = small_integer(raw.as_bytes()) {
        v
    } else {
        let v = js_number(raw);
        // `valid_value`: `isNumber`, and not negative for timers.
        if raw.is_empty() || v.is_nan() || (kind == Kind::Timer && v < 0.0) {
            return Simple::Other { scanned: end };
        }
        v
    };
    Simple::Line {
        end,
        name: &text[start..colon],
        sample: Sample {
            kind,
            value,
            raw,
            weight,
        },
    }
}

#[inline]
fn make_sample(kind: Kind, raw: &str, weight: f64) -> Sample<'_> {
    let value = if kind == Kind::Set {
        0.0
    } else {
        js_number(raw)
    };
    Sample {
        kind,
        value,
        raw,
        weight,
    }
}

/// Spec §4.2 rule 3, on the raw (untrimmed) type.
#[inline]
fn valid_value(ty: &str, v: &str) -> bool {
    match ty {
        "s" => true,
        "ms" => js_is_number(v) && js_number(v) >= 0.0,
        _ => js_is_number(v),
    }
}

/// Spec §4.3: the trimmed type decides.
#[inline]
fn kind_of(ty: &str, dog: bool) -> Kind {
    let t = if ty.bytes().all(|b| b.is_ascii_graphic()) {
        ty
    } else {
        js_trim(ty)
    };
    match t {
        "ms" => Kind::Timer,
        "g" => Kind::Gauge,
        "s" => Kind::Set,
        "h" | "d" if dog => Kind::Timer,
        _ => Kind::Counter,
    }
}

/// Spec §4.2 rule 2 and §4.3: a sample-rate field, as `1 / rate`; `None` when the segment
/// is bad (including the inputs that crash the reference, §4.3).
#[inline]
fn sample_weight(field: &str) -> Option<f64> {
    let rest = field.strip_prefix('@')?;
    if rest.is_empty() || rest.starts_with('-') || !js_is_number(rest) {
        return None;
    }
    // The reference reads the rate from the capture `^@([\d.]+)`.
    let n = rest
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b'.')
        .count();
    if n == 0 {
        return None;
    }
    let rate = js_number(&rest[..n]);
    if rate.is_nan() {
        return None;
    }
    Some(1.0 / rate)
}

/// DogStatsD: cut the value part before the first extension field (`c:`, `e:`, `card:`,
/// `T<digits>`) found after the type.
fn strip_dog_fields(values: &str) -> &str {
    let mut idx: usize = 0;
    for (i, piece) in values.split('|').enumerate() {
        if i >= 2
            && (piece.starts_with("c:")
                || piece.starts_with("e:")
                || piece.starts_with("card:")
                || (piece.len() > 1
                    && piece.starts_with('T')
                    && piece[1..].bytes().all(|b| b.is_ascii_digit())))
        {
            return &values[..idx.saturating_sub(1)];
        }
        idx += piece.len() + 1;
    }
    values
}

/// Bytes kept as they are by the sanitiser (`[A-Za-z0-9_.;=-]`).
static CLEAN: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        t[i] = c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b';' | b'=' | b'-');
        i += 1;
    }
    t
};

#[inline]
fn is_clean(s: &str) -> bool {
    s.bytes().all(|b| CLEAN[b as usize])
}

/// Spec §5: whitespace runs → `_`, `/` → `-`, drop characters outside `[A-Za-z0-9_.;=-]`.
pub(crate) fn sanitize_into(out: &mut String, s: &str) {
    let mut in_space = false;
    for c in s.chars() {
        if is_js_space(c) {
            if !in_space {
                out.push('_');
                in_space = true;
            }
            continue;
        }
        in_space = false;
        if c == '/' {
            out.push('-');
        } else if c.is_ascii() && CLEAN[c as usize] {
            out.push(c);
        }
    }
}

/// Spec §3 steps 1–2 and §5: the aggregation key.
fn build_key<'a>(
    name: &'a str,
    tags: &str,
    opts: ParseOptions,
    raw: &'a mut String,
    key: &'a mut String,
    spans: &mut Vec<(usize, usize)>,
) -> &'a str {
    if tags.is_empty() {
        if !opts.sanitize || is_clean(name) {
            return name;
        }
        key.clear();
        sanitize_into(key, name);
        return key;
    }
    raw.clear();
    raw.push_str(name);
    for tag in tags.split(',') {
        raw.push(';');
        // First ';' → '_', then first ':' → '='.
        let start = raw.len();
        match tag.find(';') {
            Some(i) => {
                raw.push_str(&tag[..i]);
                raw.push('_');
                raw.push_str(&tag[i + 1..]);
            }
            None => raw.push_str(tag),
        }
        if let Some(i) = raw[start..].find(':') {
            raw.replace_range(start + i..start + i + 1, "=");
        }
    }
    let built: &str = if opts.sanitize {
        key.clear();
        sanitize_into(key, raw);
        if !opts.dogstatsd {
            return key;
        }
        std::mem::swap(raw, key);
        raw
    } else {
        if !opts.dogstatsd {
            return raw;
        }
        raw
    };
    // DogStatsD: canonical tags (Graphite 1.1 rules, spec §15.2): drop tags without a name
    // or value, sort by name, last value of a repeated name wins.
    let Some(first) = built.find(';') else {
        key.clear();
        key.push_str(built);
        return key;
    };
    spans.clear();
    let mut pos = first + 1;
    for tag in built[first + 1..].split(';') {
        let (s, e) = (pos, pos + tag.len());
        pos = e + 1;
        let Some(eq) = tag.find('=') else { continue };
        let (n, v) = (&tag[..eq], &tag[eq + 1..]);
        if n.is_empty()
            || v.is_empty()
            || v.starts_with('~')
            || n.bytes().any(|b| matches!(b, b'!' | b'^'))
        {
            continue;
        }
        spans.push((s, e));
    }
    let tag_name = |&(s, e): &(usize, usize)| {
        let t = &built[s..e];
        &t[..t.find('=').unwrap_or(t.len())]
    };
    spans.sort_by(|a, b| tag_name(a).cmp(tag_name(b)));
    key.clear();
    key.push_str(&built[..first]);
    for (i, span) in spans.iter().enumerate() {
        if spans
            .get(i + 1)
            .is_some_and(|next| tag_name(next) == tag_name(span))
        {
            continue;
        }
        key.push(';');
        key.push_str(&built[span.0..span.1]);
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    enum Ev {
        S(String, Kind, f64, String, f64),
        Bad(String),
        Dog(DogKind),
    }

    #[derive(Default)]
    struct Rec(Vec<Ev>);

    impl LineHandler for Rec {
        fn sample(&mut self, key: &str, s: Sample<'_>) {
            self.0
                .push(Ev::S(key.into(), s.kind, s.value, s.raw.into(), s.weight));
        }
        fn bad(&mut self, _line: &str, seg: &str) {
            self.0.push(Ev::Bad(seg.into()));
        }
        fn dog(&mut self, k: DogKind) {
            self.0.push(Ev::Dog(k));
        }
    }

    fn parse_with(opts: ParseOptions, line: &str) -> Vec<Ev> {
        let mut p = LineParser::new(opts);
        let mut r = Rec::default();
        p.line(line, &mut r);
        r.0
    }

    fn parse(line: &str) -> Vec<Ev> {
        parse_with(ParseOptions::default(), line)
    }

    fn one(line: &str) -> (String, Kind, f64, f64) {
        match parse(line).as_slice() {
            [Ev::S(k, kind, v, _, w)] => (k.clone(), *kind, *v, *w),
            other => panic!("{line:?} gave {other:?}"),
        }
    }

    fn bad_count(line: &str) -> usize {
        parse(line)
            .iter()
            .filter(|e| matches!(e, Ev::Bad(_)))
            .count()
    }

    // Expected values from spec §17 (observed on the reference).
    #[test]
    fn sampled_counter() {
        assert_eq!(one("a:1|c|@0.1"), ("a".into(), Kind::Counter, 1.0, 10.0));
        assert_eq!(one("a:1|c|@2").3, 0.5);
        assert_eq!(one("a:1|c|@0.3").3, 3.3333333333333335);
        assert_eq!(one("a:1|c|@.5").3, 2.0);
        assert_eq!(one("a:1|c|@0.5|extra").3, 2.0);
    }

    #[test]
    fn sample_rate_prefix_quirks() {
        assert_eq!(one("a:1|c|@1e-1").3, 1.0);
        assert_eq!(one("a:1|c|@5e-1").3, 0.2);
        assert_eq!(one("a:1|c|@0").3, f64::INFINITY);
        assert_eq!(one("a:1|c|@0x10").3, f64::INFINITY);
    }

    #[test]
    fn crashing_rates_are_bad_lines() {
        for l in [
            "a:1|c|@+0.5",
            "a:1|c|@ 0.5",
            "a:1|c|@Infinity",
            "a:1|c|@+1",
            "a:1|c|@\r",
        ] {
            assert_eq!(bad_count(l), 1, "{l:?}");
            assert_eq!(parse(l).len(), 1, "{l:?}");
        }
    }

    #[test]
    fn malformed_rates_are_bad() {
        for l in [
            "a:1|c|",
            "a:1|c|@1.5.",
            "a:1|c|@",
            "a:1|c|@-1",
            "a:1|c|0.5",
            "a:1|c|@abc",
        ] {
            assert_eq!(bad_count(l), 1, "{l:?}");
        }
    }

    #[test]
    fn value_literals() {
        assert_eq!(one("a:0x10|c").2, 16.0);
        assert_eq!(one("a:1e3|c").2, 1000.0);
        assert_eq!(one("a: 5|c").2, 5.0);
        assert_eq!(one("a:  |c").2, 0.0);
        assert_eq!(one("a:.5|c").2, 0.5);
        assert_eq!(one("a:5.|c").2, 5.0);
        assert_eq!(one("a:-3|c").2, -3.0);
        assert_eq!(one("a:1e400|c").2, f64::INFINITY);
    }

    #[test]
    fn bad_values() {
        for l in [
            "a:|c",
            "a|c",
            "a",
            "a:NaN|c",
            "a:1_000|c",
            "a:abc|g",
            "a:+0x10|g",
            "t:-5|ms",
            "a_bad_test_value|z",
        ] {
            assert_eq!(bad_count(l), 1, "{l:?}");
            assert_eq!(parse(l).len(), 1, "{l:?}");
        }
    }

    #[test]
    fn unknown_types_are_counters() {
        for l in ["a:1|C", "a:5|h", "a:5|d", "a:1|MS", "a:1|c\r", "a:1|foo"] {
            assert_eq!(one(l).1, Kind::Counter, "{l:?}");
        }
    }

    #[test]
    fn type_trim_bypasses_timer_check() {
        assert_eq!(one("t:-5| ms"), ("t".into(), Kind::Timer, -5.0, 1.0));
        assert_eq!(one("t:-5|ms\r").1, Kind::Timer);
        assert_eq!(one("t:0x1F|ms").2, 31.0);
        assert_eq!(one("t:-0|ms").2, 0.0);
    }

    #[test]
    fn several_segments() {
        let evs = parse("c:1|c:2|g");
        assert_eq!(
            evs,
            vec![
                Ev::S("c".into(), Kind::Counter, 1.0, "1".into(), 1.0),
                Ev::S("c".into(), Kind::Gauge, 2.0, "2".into(), 1.0)
            ]
        );
        assert_eq!(bad_count("a:1:2|c"), 1);
        assert_eq!(bad_count("a:1:2:3|d"), 2);
        assert_eq!(parse("t:1|ms:2|ms:3|ms").len(), 3);
    }

    #[test]
    fn sets_take_raw_values() {
        let evs = parse("s:foo bar|s");
        assert_eq!(
            evs,
            vec![Ev::S("s".into(), Kind::Set, 0.0, "foo bar".into(), 1.0)]
        );
        assert_eq!(
            parse("s:|s"),
            vec![Ev::S("s".into(), Kind::Set, 0.0, "".into(), 1.0)]
        );
    }

    #[test]
    fn sanitising() {
        assert_eq!(one("a b:1|c").0, "a_b");
        assert_eq!(one("a\tb:1|c").0, "a_b");
        assert_eq!(one("a  \t b:1|c").0, "a_b");
        assert_eq!(one("a/b:1|c").0, "a-b");
        assert_eq!(one("a+b!$%^&*()x:1|c").0, "abx");
        assert_eq!(one("\u{fc}n\u{ef}x:1|c").0, "nx");
        assert_eq!(one(":1|c").0, "");
        assert_eq!(one("fo/o;tag1=val1:1|c").0, "fo-o;tag1=val1");
        assert_eq!(one("a\u{a0}\u{2003}b:1|c").0, "a_b");
        assert_eq!(one("a \u{e9} b:1|c").0, "a__b");
    }

    #[test]
    fn tags_as_etsy() {
        assert_eq!(one("tg:1|c|#env:prod,host:h1").0, "tg;env=prod;host=h1");
        assert_eq!(one("a:1|c|#a:b:c").0, "a;a=bc");
        assert_eq!(one("a:1|c|#novalue").0, "a;novalue");
        assert_eq!(one("a:1|c|#a;b:c").0, "a;a_b=c");
        assert_eq!(one("a:1|c|#").0, "a");
        assert_eq!(one("a:1|c|#,").0, "a;;");
        assert_eq!(one("a:1|c|#a:b|#c:d").0, "a;a=b");
        assert_eq!(
            one("a:1|c|@0.5|#x:y"),
            ("a;x=y".into(), Kind::Counter, 1.0, 2.0)
        );
        assert_eq!(
            one("a:1|c|#x:y|@0.5"),
            ("a;x=y0.5".into(), Kind::Counter, 1.0, 1.0)
        );
        assert_eq!(
            one("foo+bar:250|c|#tag1:val;1,tag3:val3,tag2:val2").0,
            "foobar;tag1=val_1;tag3=val3;tag2=val2"
        );
        assert_eq!(one("b:1|c|#z:1,a:2").0, "b;z=1;a=2");
    }

    #[test]
    fn no_sanitising_keeps_raw_key() {
        let opts = ParseOptions {
            sanitize: false,
            dogstatsd: false,
        };
        match parse_with(opts, "a b/c*:1|c|#k:v w,x y:z").as_slice() {
            [Ev::S(k, ..)] => assert_eq!(k, "a b/c*;k=v w;x y=z"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn etsy_mode_rejects_dogstatsd_extensions() {
        assert_eq!(bad_count("_e{5,4}:title|text|#a:b"), 1);
        assert_eq!(bad_count("_sc|svc|0|#a:b"), 1);
        assert_eq!(bad_count("a:1|c|T1700000000"), 1);
        assert_eq!(bad_count("a:1|c|c:abc"), 2);
    }

    #[test]
    fn dogstatsd_mode() {
        let dog = ParseOptions {
            sanitize: true,
            dogstatsd: true,
        };
        let evs = parse_with(dog, "t:1:2:3|ms|@0.5");
        assert_eq!(evs.len(), 3);
        assert!(
            evs.iter()
                .all(|e| matches!(e, Ev::S(k, Kind::Timer, _, _, w) if k == "t" && *w == 2.0))
        );
        assert!(matches!(
            parse_with(dog, "h:5|h").as_slice(),
            [Ev::S(_, Kind::Timer, ..)]
        ));
        assert!(matches!(
            parse_with(dog, "d:5|d").as_slice(),
            [Ev::S(_, Kind::Timer, ..)]
        ));
        assert_eq!(
            parse_with(dog, "_e{5,4}:title|text|#a:b"),
            vec![Ev::Dog(DogKind::Event)]
        );
        assert_eq!(
            parse_with(dog, "_sc|svc|0|#a:b"),
            vec![Ev::Dog(DogKind::ServiceCheck)]
        );
        match parse_with(dog, "a:1|c|#z:1,a:2,novalue,a:3|c:abc|T1700000000").as_slice() {
            [Ev::S(k, Kind::Counter, v, ..)] => {
                assert_eq!(k, "a;a=3;z=1");
                assert_eq!(*v, 1.0);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_with(dog, "a:1|c|c:abc").as_slice(),
            [Ev::S(_, Kind::Counter, ..)]
        ));
        assert!(
            matches!(parse_with(dog, "a:1|c|@0.5|T1700000000").as_slice(), [Ev::S(_, _, _, _, w)] if *w == 2.0)
        );
        // Packing is not defined for sets; a trailing untyped value is bad.
        assert_eq!(
            parse_with(dog, "s:a:b|s")
                .iter()
                .filter(|e| matches!(e, Ev::Bad(_)))
                .count(),
            1
        );
        assert_eq!(
            parse_with(dog, "x:1|c:2")
                .iter()
                .filter(|e| matches!(e, Ev::Bad(_)))
                .count(),
            1
        );
    }

    #[test]
    fn packet_counts_non_empty_lines() {
        let mut p = LineParser::default();
        let mut r = Rec::default();
        assert_eq!(p.packet("e:1|c\n\ne:1|c\n", &mut r), 2);
        assert_eq!(r.0.len(), 2);
    }
}

#[cfg(test)]
mod proptests {
    use proptest::prelude::*;

    use super::*;

    #[derive(Default)]
    struct Count {
        samples: usize,
        bad: usize,
        keys_clean: bool,
        sanitize: bool,
    }

    impl LineHandler for Count {
        fn sample(&mut self, key: &str, s: Sample<'_>) {
            self.samples += 1;
            if self.sanitize && !is_clean(key) {
                self.keys_clean = false;
            }
            assert!(s.weight >= 0.0 || s.weight.is_nan());
            assert!(!(s.kind == Kind::Timer && s.value.is_nan()));
        }
        fn bad(&mut self, _l: &str, _s: &str) {
            self.bad += 1;
        }
    }

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
        fn bad(&mut self, _l: &str, seg: &str) {
            self.0.push((seg.to_string(), None));
        }
    }

    fn cases() -> u32 {
        std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(20_000)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(cases()))]

        /// Any input: no panic, every value segment is either a sample or a bad line,
        /// and sanitised keys only hold `[A-Za-z0-9_.;=-]`.
        #[test]
        fn arbitrary_lines(line in "([a-z0-9 .:|@#,;=+\\-_/eExXinfINF\\t\\r\u{a0}\u{fc}\u{fffd}]|Infinity|0x|\\|#|\\|@){0,40}",
                           dog in any::<bool>(), sanitize in any::<bool>()) {
            let mut p = LineParser::new(ParseOptions { sanitize, dogstatsd: dog });
            let mut c = Count { keys_clean: true, sanitize, ..Count::default() };
            let n = p.packet(&line, &mut c);
            prop_assert!(c.keys_clean);
            if !dog {
                // Etsy mode: one outcome per ':'-segment of each line's body (or 1 without ':').
                let mut want = 0;
                for l in line.split('\n').filter(|l| !l.is_empty()) {
                    let body = l.split("|#").next().unwrap_or("");
                    want += body.split(':').count().saturating_sub(1).max(1);
                }
                prop_assert_eq!(c.samples + c.bad, want);
                prop_assert_eq!(n as usize, line.split('\n').filter(|l| !l.is_empty()).count());
            }
        }

        /// Raw bytes (as UDP delivers them, decoded lossily) never panic.
        #[test]
        fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let text = String::from_utf8_lossy(&bytes);
            let mut p = LineParser::new(ParseOptions { sanitize: true, dogstatsd: true });
            let mut c = Count { keys_clean: true, sanitize: true, ..Count::default() };
            p.packet(&text, &mut c);
            let mut p = LineParser::default();
            p.packet(&text, &mut c);
            prop_assert!(c.keys_clean);
        }

        /// The one-pass fast path gives exactly what the full parser gives, line by line,
        /// on input shaped like real traffic with every kind of near miss mixed in.
        #[test]
        fn simple_lines_agree_with_the_full_parser(
            lines in proptest::collection::vec(
                "([a-z0-9_.;=-]|[ /*#\u{e9}])*(:([0-9]{1,3}|[+-]?[0-9]*\\.?[0-9]+|0x1F|-?Infinity|1e400| 5|x|)){0,2}(\\|(c|ms|g|s|h|d|C| c|c\r|))(\\|(@0\\.5|@\\.1|@1|@0|@|@-1|@\\+1|x|#a:b|c:x|T1))?(\\|@0\\.5)?",
                0..6),
            dog in any::<bool>(), sanitize in any::<bool>()) {
            let opts = ParseOptions { sanitize, dogstatsd: dog };
            let packet = lines.join("\n");
            let mut fast = Log::default();
            let n = LineParser::new(opts).packet(&packet, &mut fast);
            let mut full = Log::default();
            let mut p = LineParser::new(opts);
            let mut want = 0;
            for l in packet.split('\n').filter(|l| !l.is_empty()) {
                want += 1;
                p.line(l, &mut full);
            }
            prop_assert_eq!(n, want);
            prop_assert_eq!(fast.0, full.0);
        }

        /// Number formatting round-trips through Number().
        #[test]
        fn js_numbers_round_trip(bits in any::<u64>()) {
            let x = f64::from_bits(bits);
            let s = crate::jsnum::js_number_string(x);
            let back = js_number(&s);
            if x.is_nan() {
                prop_assert!(back.is_nan());
            } else {
                prop_assert_eq!(back, if x == 0.0 { 0.0 } else { x });
            }
        }
    }
}
