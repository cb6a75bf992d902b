//! The payload of Carbon's pickle protocol (spec `whisper-carbon.md` 12.3): a Python pickle
//! of a list of `(path, (timestamp, value))`. Unpickling can run code, so this is not a
//! pickle library: a small machine that knows the opcodes senders use for that shape (every
//! protocol, 0 to 5) and refuses any other — globals, object construction, dicts, sets,
//! extensions, buffers — before anything is stored. Every step is bounded by the payload's
//! length, which the framing caps.

use std::ops::Range;

use super::line::python_float;

/// Why a payload was refused as a whole (its points are not stored: the sender's batch
/// is one unit, as in Carbon).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PickleError {
    #[error(
        "opcode {opcode:#04x} at byte {at} is not allowed (only lists, tuples, strings and numbers are)"
    )]
    Forbidden { opcode: u8, at: usize },
    #[error("the pickle ends early (at byte {0})")]
    Truncated(usize),
    #[error("malformed pickle at byte {at}: {what}")]
    Malformed { at: usize, what: &'static str },
    #[error("the pickle is not a list of datapoints")]
    NotAList,
}

/// What the stack holds. Tuples and lists point into arenas the decoder reuses, so a
/// payload of many points allocates nothing per point once the buffers have grown.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Item {
    Mark,
    None,
    /// An int, long, float or bool, as Python's `float()` of it would give (None: an int
    /// too large for a float, which `float()` refuses).
    Number(Option<f64>),
    /// A str or bytes object: a range of `Decoder::text`.
    Text(u32, u32),
    /// A tuple: a range of `Decoder::tuples`.
    Tuple(u32, u32),
    /// A list: an index into `Decoder::lists`.
    List(u32),
}

/// One datapoint as the sender gave it; the receiver applies Carbon's rules (NaN, -1).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Datapoint {
    /// The path, as a range of [`Decoder::names`].
    pub name: Range<usize>,
    pub timestamp: f64,
    pub value: f64,
}

/// Decodes payloads; keep one per connection so its buffers are reused.
#[derive(Debug, Default)]
pub(crate) struct Decoder {
    stack: Vec<Item>,
    marks: Vec<usize>,
    memo: Vec<Option<Item>>,
    text: Vec<u8>,
    tuples: Vec<Item>,
    lists: Vec<Vec<Item>>,
    lists_used: usize,
    /// The paths of the last decoded payload, back to back.
    pub names: String,
    /// The datapoints of the last decoded payload.
    pub points: Vec<Datapoint>,
    /// Elements of the last payload that were not datapoints (Carbon skips them too).
    pub skipped: usize,
}

/// Deepest nesting of MARKs accepted (senders use two or three).
const MAX_MARKS: usize = 64;
/// How far past the memo's end a PUT may reach. Picklers number memo entries one after
/// another; a far index would only make the memo table large for nothing.
const MAX_MEMO_GAP: usize = 1024;

struct Input<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Input<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], PickleError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or(PickleError::Truncated(self.data.len()))?;
        let bytes = &self.data[self.at..end];
        self.at = end;
        Ok(bytes)
    }

    fn byte(&mut self) -> Result<u8, PickleError> {
        Ok(self.take(1)?[0])
    }

    fn u32_le(&mut self) -> Result<u32, PickleError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64_le(&mut self) -> Result<u64, PickleError> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    /// A protocol-0 argument: the bytes up to the next newline.
    fn line(&mut self) -> Result<&'a [u8], PickleError> {
        let rest = &self.data[self.at..];
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or(PickleError::Truncated(self.data.len()))?;
        self.at += end + 1;
        Ok(&rest[..end])
    }

    /// A length-prefixed argument whose length must fit in what is left.
    fn counted(&mut self, len: u64) -> Result<&'a [u8], PickleError> {
        let len = usize::try_from(len).map_err(|_| PickleError::Truncated(self.data.len()))?;
        self.take(len)
    }
}

fn malformed(at: usize, what: &'static str) -> PickleError {
    PickleError::Malformed { at, what }
}

/// Python's `int()` of a protocol-0 integer line, as a float (`None` beyond f64's range).
fn int_line(line: &[u8], at: usize) -> Result<Option<f64>, PickleError> {
    let digits = line.strip_suffix(b"L").unwrap_or(line);
    let text = std::str::from_utf8(digits).map_err(|_| malformed(at, "bad integer"))?;
    let trimmed = text.trim();
    let unsigned = trimmed.strip_prefix(['+', '-']).unwrap_or(trimmed);
    if unsigned.is_empty() || !unsigned.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed(at, "bad integer"));
    }
    let value: f64 = trimmed.parse().map_err(|_| malformed(at, "bad integer"))?;
    Ok(value.is_finite().then_some(value))
}

/// A little-endian two's-complement integer (LONG1/LONG4) as a float.
fn long_bytes(bytes: &[u8]) -> Option<f64> {
    let Some(&last) = bytes.last() else {
        return Some(0.0);
    };
    let negative = last & 0x80 != 0;
    let mut value = 0.0f64;
    for &b in bytes.iter().rev() {
        let b = if negative { !b } else { b };
        value = value * 256.0 + f64::from(b);
    }
    if negative {
        value = -(value + 1.0);
    }
    value.is_finite().then_some(value)
}

impl Decoder {
    /// Decodes one payload into `names`, `points` and `skipped` (replacing what the last
    /// one left there).
    pub fn decode(&mut self, payload: &[u8]) -> Result<(), PickleError> {
        self.stack.clear();
        self.marks.clear();
        self.memo.clear();
        self.text.clear();
        self.tuples.clear();
        for list in &mut self.lists[..self.lists_used] {
            list.clear();
        }
        self.lists_used = 0;
        self.names.clear();
        self.points.clear();
        self.skipped = 0;
        let top = self.run(payload)?;
        self.collect(top)
    }

    fn push_text(&mut self, bytes: &[u8]) -> Item {
        let start = self.text.len();
        self.text.extend_from_slice(bytes);
        Item::Text(start as u32, bytes.len() as u32)
    }

    fn new_list(&mut self, items: Range<usize>) -> Item {
        if self.lists_used == self.lists.len() {
            self.lists.push(Vec::new());
        }
        let id = self.lists_used;
        self.lists_used += 1;
        let list = &mut self.lists[id];
        list.extend(self.stack.drain(items));
        Item::List(id as u32)
    }

    fn new_tuple(&mut self, items: Range<usize>) -> Item {
        let start = self.tuples.len();
        let len = items.len();
        self.tuples.extend(self.stack.drain(items));
        Item::Tuple(start as u32, len as u32)
    }

    fn pop(&mut self, at: usize) -> Result<Item, PickleError> {
        match self.stack.pop() {
            Some(Item::Mark) | None => Err(malformed(at, "stack underflow")),
            Some(item) => Ok(item),
        }
    }

    /// The items above the last MARK, which is removed.
    fn since_mark(&mut self, at: usize) -> Result<Range<usize>, PickleError> {
        let mark = self.marks.pop().ok_or(malformed(at, "no MARK"))?;
        // The MARK itself sits at `mark`; the items follow it.
        if self.stack.get(mark) != Some(&Item::Mark) {
            return Err(malformed(at, "MARK lost"));
        }
        self.stack.remove(mark);
        Ok(mark..self.stack.len())
    }

    fn memo_put(&mut self, index: u64, at: usize, limit: usize) -> Result<(), PickleError> {
        let item = *self
            .stack
            .last()
            .ok_or(malformed(at, "PUT on an empty stack"))?;
        if item == Item::Mark {
            return Err(malformed(at, "PUT of a MARK"));
        }
        // Indexes beyond the payload's length, or far past the last one, would only be a way
        // to make us allocate.
        let index = usize::try_from(index)
            .ok()
            .filter(|&i| i <= limit && i <= self.memo.len() + MAX_MEMO_GAP)
            .ok_or(malformed(at, "memo index out of range"))?;
        if self.memo.len() <= index {
            self.memo.resize(index + 1, None);
        }
        self.memo[index] = Some(item);
        Ok(())
    }

    fn memo_get(&mut self, index: u64, at: usize) -> Result<(), PickleError> {
        let item = usize::try_from(index)
            .ok()
            .and_then(|i| self.memo.get(i).copied().flatten())
            .ok_or(malformed(at, "memo index not set"))?;
        self.stack.push(item);
        Ok(())
    }

    fn append_to_list(
        &mut self,
        list: Item,
        items: Range<usize>,
        at: usize,
    ) -> Result<(), PickleError> {
        let Item::List(id) = list else {
            return Err(malformed(at, "APPEND to something not a list"));
        };
        let target = &mut self.lists[id as usize];
        target.extend(self.stack.drain(items));
        Ok(())
    }

    /// Runs the opcodes; returns the object STOP leaves.
    fn run(&mut self, payload: &[u8]) -> Result<Item, PickleError> {
        let mut input = Input {
            data: payload,
            at: 0,
        };
        let limit = payload.len();
        loop {
            let at = input.at;
            let opcode = input.byte()?;
            match opcode {
                // PROTO n, and FRAME length (protocol 4 framing is only a read hint).
                0x80 => {
                    input.byte()?;
                }
                0x95 => {
                    input.u64_le()?;
                }
                b'.' => {
                    let top = self.pop(at)?;
                    return if self.stack.is_empty() {
                        Ok(top)
                    } else {
                        Err(malformed(at, "items left on the stack"))
                    };
                }
                b'(' => {
                    if self.marks.len() == MAX_MARKS {
                        return Err(malformed(at, "nested too deeply"));
                    }
                    self.marks.push(self.stack.len());
                    self.stack.push(Item::Mark);
                }
                b'0' => {
                    match self.stack.pop() {
                        Some(Item::Mark) => {
                            self.marks.pop();
                        }
                        Some(_) => {}
                        None => return Err(malformed(at, "stack underflow")),
                    };
                }
                b'1' => {
                    let items = self.since_mark(at)?;
                    self.stack.truncate(items.start);
                }
                b'2' => {
                    let top = self.pop(at)?;
                    self.stack.extend([top, top]);
                }
                b'N' => self.stack.push(Item::None),
                0x88 => self.stack.push(Item::Number(Some(1.0))),
                0x89 => self.stack.push(Item::Number(Some(0.0))),
                b'I' => {
                    let line = input.line()?;
                    let value = match line {
                        b"00" => Some(0.0),
                        b"01" => Some(1.0),
                        _ => int_line(line, at)?,
                    };
                    self.stack.push(Item::Number(value));
                }
                b'L' => {
                    let value = int_line(input.line()?, at)?;
                    self.stack.push(Item::Number(value));
                }
                b'J' => {
                    let v = input.u32_le()? as i32;
                    self.stack.push(Item::Number(Some(f64::from(v))));
                }
                b'K' => {
                    let v = input.byte()?;
                    self.stack.push(Item::Number(Some(f64::from(v))));
                }
                b'M' => {
                    let b = input.take(2)?;
                    let v = u16::from_le_bytes([b[0], b[1]]);
                    self.stack.push(Item::Number(Some(f64::from(v))));
                }
                0x8a => {
                    let n = input.byte()?;
                    let bytes = input.take(usize::from(n))?;
                    self.stack.push(Item::Number(long_bytes(bytes)));
                }
                0x8b => {
                    let n = input.u32_le()?;
                    let bytes = input.counted(u64::from(n))?;
                    self.stack.push(Item::Number(long_bytes(bytes)));
                }
                b'F' => {
                    let line = input.line()?;
                    let value =
                        python_float(line.trim_ascii()).ok_or(malformed(at, "bad float"))?;
                    self.stack.push(Item::Number(Some(value)));
                }
                b'G' => {
                    let b = input.take(8)?;
                    let value = f64::from_be_bytes(b.try_into().expect("8 bytes"));
                    self.stack.push(Item::Number(Some(value)));
                }
                // Strings and bytes; names and values are both used as text.
                b'X' => {
                    let n = input.u32_le()?;
                    let bytes = input.counted(u64::from(n))?;
                    let item = self.push_text(bytes);
                    self.stack.push(item);
                }
                0x8c | b'U' | b'C' => {
                    let n = input.byte()?;
                    let bytes = input.take(usize::from(n))?;
                    let item = self.push_text(bytes);
                    self.stack.push(item);
                }
                0x8d | 0x8e => {
                    let n = input.u64_le()?;
                    let bytes = input.counted(n)?;
                    let item = self.push_text(bytes);
                    self.stack.push(item);
                }
                b'T' | b'B' => {
                    let n = input.u32_le()?;
                    let bytes = input.counted(u64::from(n))?;
                    let item = self.push_text(bytes);
                    self.stack.push(item);
                }
                b'S' => {
                    let line = input.line()?;
                    let item = self.quoted_string(line, at)?;
                    self.stack.push(item);
                }
                b'V' => {
                    let line = input.line()?;
                    let item = self.raw_unicode_escape(line, at)?;
                    self.stack.push(item);
                }
                // Containers.
                b']' => {
                    let end = self.stack.len();
                    let item = self.new_list(end..end);
                    self.stack.push(item);
                }
                b'l' => {
                    let items = self.since_mark(at)?;
                    let item = self.new_list(items);
                    self.stack.push(item);
                }
                b'a' => {
                    let value = self.pop(at)?;
                    let list = self.pop(at)?;
                    self.stack.push(list);
                    self.stack.push(value);
                    let end = self.stack.len();
                    self.append_to_list(list, end - 1..end, at)?;
                }
                b'e' => {
                    let items = self.since_mark(at)?;
                    let list = *self
                        .stack
                        .get(items.start.wrapping_sub(1))
                        .ok_or(malformed(at, "APPENDS without a list"))?;
                    self.append_to_list(list, items, at)?;
                }
                b')' => {
                    let end = self.stack.len();
                    let item = self.new_tuple(end..end);
                    self.stack.push(item);
                }
                b't' => {
                    let items = self.since_mark(at)?;
                    let item = self.new_tuple(items);
                    self.stack.push(item);
                }
                0x85..=0x87 => {
                    let n = usize::from(opcode - 0x84);
                    let end = self.stack.len();
                    let start = end
                        .checked_sub(n)
                        .filter(|&s| self.stack[s..].iter().all(|i| *i != Item::Mark))
                        .ok_or(malformed(at, "stack underflow"))?;
                    let item = self.new_tuple(start..end);
                    self.stack.push(item);
                }
                // The memo.
                b'p' => {
                    let index = int_line(input.line()?, at)?.ok_or(malformed(at, "bad PUT"))?;
                    if index < 0.0 {
                        return Err(malformed(at, "bad PUT"));
                    }
                    self.memo_put(index as u64, at, limit)?;
                }
                b'q' => {
                    let index = input.byte()?;
                    self.memo_put(u64::from(index), at, limit)?;
                }
                b'r' => {
                    let index = input.u32_le()?;
                    self.memo_put(u64::from(index), at, limit)?;
                }
                0x94 => {
                    let index = self.memo.len() as u64;
                    self.memo_put(index, at, limit)?;
                }
                b'g' => {
                    let index = int_line(input.line()?, at)?.ok_or(malformed(at, "bad GET"))?;
                    if index < 0.0 {
                        return Err(malformed(at, "bad GET"));
                    }
                    self.memo_get(index as u64, at)?;
                }
                b'h' => {
                    let index = input.byte()?;
                    self.memo_get(u64::from(index), at)?;
                }
                b'j' => {
                    let index = input.u32_le()?;
                    self.memo_get(u64::from(index), at)?;
                }
                // Everything else builds or calls objects (GLOBAL, REDUCE, BUILD, INST, OBJ,
                // NEWOBJ, STACK_GLOBAL, EXT*, PERSID), or makes dicts, sets and buffers.
                _ => return Err(PickleError::Forbidden { opcode, at }),
            }
        }
    }

    /// A protocol-0 `S` argument: a Python string literal in single or double quotes.
    fn quoted_string(&mut self, line: &[u8], at: usize) -> Result<Item, PickleError> {
        let quote = *line.first().ok_or(malformed(at, "empty STRING"))?;
        if line.len() < 2 || !matches!(quote, b'\'' | b'"') || line[line.len() - 1] != quote {
            return Err(malformed(at, "STRING not quoted"));
        }
        let body = &line[1..line.len() - 1];
        let start = self.text.len();
        let mut i = 0;
        while i < body.len() {
            let b = body[i];
            i += 1;
            if b != b'\\' || i == body.len() {
                self.text.push(b);
                continue;
            }
            let e = body[i];
            i += 1;
            let decoded = match e {
                b'\\' | b'\'' | b'"' => e,
                b'n' => b'\n',
                b'r' => b'\r',
                b't' => b'\t',
                b'a' => 0x07,
                b'b' => 0x08,
                b'f' => 0x0c,
                b'v' => 0x0b,
                b'\n' => continue,
                b'x' => {
                    let hex = body
                        .get(i..i + 2)
                        .and_then(|h| std::str::from_utf8(h).ok())
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                        .ok_or(malformed(at, "bad \\x escape"))?;
                    i += 2;
                    hex
                }
                b'0'..=b'7' => {
                    let mut value = u32::from(e - b'0');
                    for _ in 0..2 {
                        match body.get(i) {
                            Some(&d @ b'0'..=b'7') => {
                                value = value * 8 + u32::from(d - b'0');
                                i += 1;
                            }
                            _ => break,
                        }
                    }
                    (value & 0xff) as u8
                }
                // Python keeps an unknown escape as it is.
                _ => {
                    self.text.push(b'\\');
                    e
                }
            };
            self.text.push(decoded);
        }
        Ok(Item::Text(start as u32, (self.text.len() - start) as u32))
    }

    /// A protocol-0 `V` argument: raw-unicode-escape, i.e. Latin-1 bytes with `\uXXXX` and
    /// `\UXXXXXXXX` escapes; kept as UTF-8.
    fn raw_unicode_escape(&mut self, line: &[u8], at: usize) -> Result<Item, PickleError> {
        let start = self.text.len();
        let mut i = 0;
        let mut utf8 = [0u8; 4];
        while i < line.len() {
            let b = line[i];
            let digits = match (b, line.get(i + 1)) {
                (b'\\', Some(b'u')) => 4,
                (b'\\', Some(b'U')) => 8,
                _ => 0,
            };
            let c = if digits > 0 {
                let hex = line
                    .get(i + 2..i + 2 + digits)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .and_then(char::from_u32)
                    .ok_or(malformed(at, "bad \\u escape"))?;
                i += 2 + digits;
                hex
            } else {
                i += 1;
                char::from(b)
            };
            self.text
                .extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
        }
        Ok(Item::Text(start as u32, (self.text.len() - start) as u32))
    }

    fn items_of(&self, item: Item) -> Option<&[Item]> {
        match item {
            Item::Tuple(start, len) => {
                Some(&self.tuples[start as usize..start as usize + len as usize])
            }
            Item::List(id) => Some(&self.lists[id as usize]),
            _ => None,
        }
    }

    fn text_of(&self, item: Item) -> Option<&[u8]> {
        match item {
            Item::Text(start, len) => Some(&self.text[start as usize..(start + len) as usize]),
            _ => None,
        }
    }

    /// Python's `float(x)` of an element, or `None` where it raises.
    fn float_of(&self, item: Item) -> Option<f64> {
        match item {
            Item::Number(value) => value,
            Item::Text(..) => python_float(self.text_of(item)?.trim_ascii()),
            _ => None,
        }
    }

    /// Carbon's loop over the list: `(metric, (timestamp, value))` from each element that
    /// has that shape and converts; the others are skipped.
    fn collect(&mut self, top: Item) -> Result<(), PickleError> {
        let elements = self.items_of(top).ok_or(PickleError::NotAList)?.len();
        let mut names = std::mem::take(&mut self.names);
        let mut points = std::mem::take(&mut self.points);
        let mut skipped = 0;
        for i in 0..elements {
            let element = self.items_of(top).expect("checked above")[i];
            let point = (|| {
                let [name, pair] = *self.items_of(element)? else {
                    return None;
                };
                let [timestamp, value] = *self.items_of(pair)? else {
                    return None;
                };
                let (timestamp, value) = (self.float_of(timestamp)?, self.float_of(value)?);
                let name = std::str::from_utf8(self.text_of(name)?).ok()?;
                Some((name, timestamp, value))
            })();
            match point {
                Some((name, timestamp, value)) => {
                    let start = names.len();
                    names.push_str(name);
                    points.push(Datapoint {
                        name: start..names.len(),
                        timestamp,
                        value,
                    });
                }
                None => skipped += 1,
            }
        }
        self.names = names;
        self.points = points;
        self.skipped = skipped;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Points = Vec<(String, f64, f64)>;

    fn decode(payload: &[u8]) -> Result<(Points, usize), PickleError> {
        let mut d = Decoder::default();
        d.decode(payload)?;
        let points = d
            .points
            .iter()
            .map(|p| (d.names[p.name.clone()].to_string(), p.timestamp, p.value))
            .collect();
        Ok((points, d.skipped))
    }

    // The payloads are what Python 3.11's pickle.dumps writes for the objects shown.

    #[test]
    fn protocol_2_as_carbon_relay_sends_it() {
        // [('a.b', (1700000000, 1.5)), ('c', (1700000060, 2))]
        let payload = b"\x80\x02]q\x00(X\x03\x00\x00\x00a.bq\x01J\x00\xf1SeG?\xf8\x00\x00\x00\x00\x00\x00\x86q\x02\x86q\x03X\x01\x00\x00\x00cq\x04J<\xf1SeK\x02\x86q\x05\x86q\x06e.";
        let (points, skipped) = decode(payload).unwrap();
        assert_eq!(
            points,
            [
                ("a.b".to_string(), 1_700_000_000.0, 1.5),
                ("c".to_string(), 1_700_000_060.0, 2.0)
            ]
        );
        assert_eq!(skipped, 0);
    }

    #[test]
    fn protocol_0_as_etsy_statsd_sends_it() {
        // Etsy's graphite backend writes this by hand: LONG timestamps, STRING values.
        let payload =
            b"(l(S'stats.x'\n(L1700000000L\nS'12.5'\ntta(S'stats.y'\n(L1700000000L\nS'-3'\ntta.";
        let (points, _) = decode(payload).unwrap();
        assert_eq!(
            points,
            [
                ("stats.x".to_string(), 1_700_000_000.0, 12.5),
                ("stats.y".to_string(), 1_700_000_000.0, -3.0)
            ]
        );
    }

    #[test]
    fn protocol_0_strings_and_memo() {
        // [('café.€', (1700000000, 0.25)), ('café.€', (1700000001, 7))]: UNICODE in
        // raw-unicode-escape (a Latin-1 byte and a \u escape), the name reused via GET.
        let payload = b"(lp0\n(Vcaf\xe9.\\u20ac\np1\n(I1700000000\nF0.25\ntp2\ntp3\na(g1\n(I1700000001\nI7\ntp4\ntp5\na.";
        let (points, _) = decode(payload).unwrap();
        assert_eq!(
            points,
            [
                ("café.€".to_string(), 1_700_000_000.0, 0.25),
                ("café.€".to_string(), 1_700_000_001.0, 7.0)
            ]
        );
        // Escapes in a quoted STRING (Python 2 senders).
        let (points, _) = decode(b"(l(S'a\\x41\\'\\\\\\101'\n(I1\nI2\ntta.").unwrap();
        assert_eq!(points[0].0, "aA'\\A");
    }

    #[test]
    fn elements_of_another_shape_are_skipped_and_the_rest_kept() {
        // [('a', (1, 2)), 'junk', ('b', (1,)), ('c', (None, 2)), (3, (1, 2)), ['d', [5, '6']]]
        // (the fifth reuses the first's inner tuple through the memo)
        let payload = b"\x80\x02]q\x00(X\x01\x00\x00\x00aq\x01K\x01K\x02\x86q\x02\x86q\x03X\x04\x00\x00\x00junkq\x04X\x01\x00\x00\x00bq\x05K\x01\x85q\x06\x86q\x07X\x01\x00\x00\x00cq\x08NK\x02\x86q\t\x86q\nK\x03h\x02\x86q\x0b]q\x0c(X\x01\x00\x00\x00dq\r]q\x0e(K\x05X\x01\x00\x00\x006q\x0feee.";
        let (points, skipped) = decode(payload).unwrap();
        assert_eq!(
            points,
            [("a".to_string(), 1.0, 2.0), ("d".to_string(), 5.0, 6.0)]
        );
        assert_eq!(skipped, 4);
    }

    #[test]
    fn code_execution_opcodes_are_refused() {
        // An object whose __reduce__ is (os.system, ('true',)), protocols 0 and 4.
        let p0 = b"cposix\nsystem\np0\n(Vtrue\np1\ntp2\nRp3\n.";
        assert_eq!(
            decode(p0),
            Err(PickleError::Forbidden {
                opcode: b'c',
                at: 0
            })
        );
        let p4 = b"\x80\x04\x95\x1f\x00\x00\x00\x00\x00\x00\x00\x8c\x05posix\x94\x8c\x06system\x94\x93\x94\x8c\x04true\x94\x85\x94R\x94.";
        assert!(matches!(
            decode(p4),
            Err(PickleError::Forbidden { opcode: 0x93, .. })
        ));
        // [('a', (1, 2)), <that object>]: refused whole, good point included, as Carbon does.
        let mixed =
            b"(lp0\n(Va\np1\n(I1\nI2\ntp2\ntp3\nacposix\nsystem\np4\n(Vtrue\np5\ntp6\nRp7\na.";
        assert!(matches!(
            decode(mixed),
            Err(PickleError::Forbidden { opcode: b'c', .. })
        ));
        // Dicts are not datapoints either.
        assert!(decode(b"}.").is_err());
    }

    #[test]
    fn malformed_payloads_are_errors_not_panics() {
        for bad in [
            &b""[..],
            b".",
            b"(",
            b"(l",
            b"a.",
            b"e.",
            b"\x86.",
            b"K\x01K\x02.",
            b"X\xff\xff\xff\xff",
            b"\x8d\xff\xff\xff\xff\xff\xff\xff\xffab",
            b"K\x01r\xff\xff\xff\x7f.",
            b"h\x05.",
            b"I12x\n.",
            b"S'unterminated\n.",
            b"V\\u12\n.",
            b"(K\x01\x86.",
        ] {
            assert!(decode(bad).is_err(), "{bad:?} gave {:?}", decode(bad));
        }
        assert_eq!(decode(b"K\x01."), Err(PickleError::NotAList));
        assert!(decode(&[b'('; 100]).is_err());
    }

    #[test]
    fn memo_indexes_far_past_the_last_are_refused() {
        // A PUT at 2000 in a payload long enough to allow it by length alone.
        let mut payload = b"K\x01r".to_vec();
        payload.extend_from_slice(&2000u32.to_le_bytes());
        payload.push(b'0');
        payload.extend(b"N0".repeat(2000));
        payload.extend_from_slice(b"].");
        assert!(matches!(
            decode(&payload),
            Err(PickleError::Malformed {
                what: "memo index out of range",
                ..
            })
        ));
        // Sequential indexes, as picklers write them, are fine.
        let mut payload = b"K\x01r".to_vec();
        payload.extend_from_slice(&0u32.to_le_bytes());
        payload.extend_from_slice(b"0].");
        assert!(decode(&payload).is_ok());
    }

    #[test]
    fn numbers_convert_as_python_float_does() {
        // [('a', (2**40 + 5, True)), ('b', (-1, ' 1e3 '))]: LONG1, NEWTRUE, a negative
        // BININT, a string value with spaces.
        let payload = b"\x80\x02]q\x00(X\x01\x00\x00\x00aq\x01\x8a\x06\x05\x00\x00\x00\x00\x01\x88\x86q\x02\x86q\x03X\x01\x00\x00\x00bq\x04J\xff\xff\xff\xffX\x05\x00\x00\x00 1e3 q\x05\x86q\x06\x86q\x07e.";
        let (points, skipped) = decode(payload).unwrap();
        assert_eq!(skipped, 0);
        assert_eq!(
            points,
            [
                ("a".to_string(), 1_099_511_627_781.0, 1.0),
                ("b".to_string(), -1.0, 1000.0)
            ]
        );
        assert_eq!(long_bytes(&[0xff]), Some(-1.0));
        assert_eq!(long_bytes(&[0x00, 0x80]), Some(-32768.0));
        assert_eq!(long_bytes(&[]), Some(0.0));
    }

    #[test]
    fn buffers_are_reused_between_payloads() {
        let mut d = Decoder::default();
        let payload = b"(l(S'a'\n(I1\nI2\ntta.";
        d.decode(payload).unwrap();
        d.decode(payload).unwrap();
        assert_eq!(d.points.len(), 1);
        assert_eq!(&d.names, "a");
        assert!(d.decode(b"(S'x'\n.").is_err());
        d.decode(payload).unwrap();
        assert_eq!(d.points.len(), 1);
    }
}
