//! The events store behind `POST /events/`, `/events/get_data` and the `events()` render
//! function (spec §17): Graphite events (annotations such as deploys) kept in memory sorted by
//! time and persisted as JSON lines, one event per line, appended as they arrive.
//!
//! Events are few, so the whole set lives in memory, bounded by `web.events_max`. The file is
//! read once when the store opens: a line that is not a valid event is skipped, counted and
//! logged, never fatal. After that the file is only appended to, under a lock that also hands
//! out the increasing ids. Its path comes from configuration only, never from a request.
//! During an upgrade two Charcoal processes serve the same file for a moment, so an append
//! also takes an exclusive lock on the file and first reads in what the other process added:
//! ids stay unique and neither loses the other's events.
//!
//! Differences from graphite-web 1.1.10 (its Django model with django-tagging), on purpose:
//! - tags are words separated by whitespace **or commas**, when posting and when querying
//!   (Grafana users type `deploy, web`; graphite-web would look for a tag named `deploy,`),
//!   and an event's tags are kept once each, in the order given;
//! - the default tag filter needs every listed tag (graphite-web silently drops listed tags
//!   that no event has ever carried, so `tags=deploy nosuch` matched every `deploy` event);
//! - a non-string `data` is stored as its JSON text (graphite-web stored Python's `repr`);
//! - malformed bodies, a missing `what` and a non-numeric `when` are 400s (graphite-web: 500);
//! - `events()` ignores an event exactly at the end of the window (graphite-web failed with
//!   an IndexError there).

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock};

use serde::Deserialize;
use serde_json::{Value as Json, json};

use crate::error::EventError;
use crate::series::NULL;

/// Longest line read back from the file; a longer one is skipped as bad.
const MAX_LINE: usize = 16 * 1024 * 1024;
/// Latest accepted `when`, 9999-12-31T23:59:59Z (where graphite-web's datetimes end).
const MAX_WHEN: f64 = 253_402_300_799.0;
/// Bad lines logged one by one while loading; the others are only counted.
const LOGGED_BAD_LINES: usize = 10;

/// One stored event.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Event {
    /// Unique, increasing in the order events were stored.
    pub id: u64,
    /// Seconds since the epoch; fractions are kept (and filtered on) but shown truncated.
    pub when: f64,
    /// The title Grafana shows.
    pub what: String,
    /// Free text (Grafana's annotation text).
    pub data: String,
    /// Distinct tags, in the order given.
    pub tags: Vec<String>,
}

impl Event {
    /// The `/events/get_data` form: graphite-web's keys in its order, `when` in whole seconds.
    pub fn to_api_json(&self) -> Json {
        json!({
            "when": self.when.floor() as i64,
            "what": self.what,
            "data": self.data,
            "tags": self.tags,
            "id": self.id,
        })
    }

    /// One line of the file (without the newline); `when` exactly as stored.
    fn to_line(&self) -> Vec<u8> {
        let when = if self.when.fract() == 0.0 {
            json!(self.when as i64)
        } else {
            json!(self.when)
        };
        let line = json!({
            "id": self.id,
            "when": when,
            "what": self.what,
            "data": self.data,
            "tags": self.tags,
        });
        serde_json::to_vec(&line).unwrap_or_default()
    }

    fn has_all(&self, tags: &[String]) -> bool {
        tags.iter().all(|t| self.tags.contains(t))
    }

    fn has_any(&self, tags: &[String]) -> bool {
        tags.iter().any(|t| self.tags.contains(t))
    }
}

/// An event as posted, before it gets its id.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NewEvent {
    pub when: f64,
    pub what: String,
    pub data: String,
    pub tags: Vec<String>,
}

/// How a list of tags selects events (`set=` of `/events/get_data`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TagSet {
    /// Events carrying every listed tag (the default, and `set=intersection`).
    All,
    /// Events carrying at least one listed tag (`set=union`).
    Any,
}

impl TagSet {
    /// `set=union` → any; everything else (absent, `intersection`, unknown) → all, as in
    /// graphite-web, whose unknown values fall through to its default.
    pub fn from_param(value: Option<&str>) -> TagSet {
        match value {
            Some("union") => TagSet::Any,
            _ => TagSet::All,
        }
    }
}

/// Splits tag text into distinct tags: words separated by whitespace or commas.
pub(crate) fn split_tags(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in text.split(|c: char| c.is_whitespace() || c == ',') {
        if !t.is_empty() && !out.iter().any(|o| o == t) {
            out.push(t.to_owned());
        }
    }
    out
}

fn json_kind(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// Reads a `POST /events/` body (graphite-web's JSON: `what`, `tags` as a list or a string,
/// `data`, optional `when` in epoch seconds, default `now`). Unknown keys are ignored.
pub(crate) fn parse_post(body: &[u8], now: i64) -> Result<NewEvent, EventError> {
    let value: Json = serde_json::from_slice(body).map_err(|e| EventError::Json {
        reason: e.to_string(),
    })?;
    let Json::Object(mut obj) = value else {
        return Err(EventError::NotAnObject {
            got: json_kind(&value),
        });
    };
    let what = match obj.remove("what") {
        None | Some(Json::Null) => return Err(EventError::MissingWhat),
        Some(Json::String(s)) => s,
        Some(Json::Number(n)) => n.to_string(),
        Some(other) => {
            return Err(EventError::What {
                got: json_kind(&other),
            });
        }
    };
    let tags = match obj.remove("tags") {
        None | Some(Json::Null) => Vec::new(),
        Some(Json::String(s)) => split_tags(&s),
        Some(Json::Array(items)) => {
            let mut words = Vec::with_capacity(items.len());
            for item in &items {
                match item {
                    Json::String(s) => words.push(s.as_str()),
                    _ => return Err(EventError::Tags),
                }
            }
            split_tags(&words.join(" "))
        }
        Some(_) => return Err(EventError::Tags),
    };
    let data = match obj.remove("data") {
        None | Some(Json::Null) => String::new(),
        Some(Json::String(s)) => s,
        Some(other) => other.to_string(),
    };
    let when = match obj.remove("when") {
        None | Some(Json::Null) => now as f64,
        Some(Json::Number(n)) => match n.as_f64() {
            Some(w) if w.is_finite() && (0.0..=MAX_WHEN).contains(&w) => w,
            _ => {
                return Err(EventError::When { got: n.to_string() });
            }
        },
        Some(other) => {
            return Err(EventError::When {
                got: other.to_string(),
            });
        }
    };
    Ok(NewEvent {
        when,
        what,
        data,
        tags,
    })
}

/// A line of the file as written by [`Event::to_line`]; unknown keys are ignored.
#[derive(Deserialize)]
struct Line {
    id: u64,
    when: f64,
    what: String,
    #[serde(default)]
    data: String,
    #[serde(default)]
    tags: Vec<String>,
}

/// Why a line of the file was skipped.
#[derive(Debug)]
enum BadLine {
    TooLong,
    Json(serde_json::Error),
    When(f64),
    DuplicateId(u64),
}

impl std::fmt::Display for BadLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BadLine::TooLong => write!(f, "longer than {MAX_LINE} bytes"),
            BadLine::Json(e) => write!(f, "not an event: {e}"),
            BadLine::When(w) => write!(f, "when {w} is out of range"),
            BadLine::DuplicateId(id) => write!(f, "id {id} seen before"),
        }
    }
}

fn parse_line(bytes: &[u8]) -> Result<Event, BadLine> {
    let line: Line = serde_json::from_slice(bytes).map_err(BadLine::Json)?;
    if !(line.when.is_finite() && (0.0..=MAX_WHEN).contains(&line.when)) {
        return Err(BadLine::When(line.when));
    }
    Ok(Event {
        id: line.id,
        when: line.when,
        what: line.what,
        data: line.data,
        // A hand-edited line gets the same tag rules as a posted event.
        tags: split_tags(&line.tags.join(" ")),
    })
}

/// Calls `f(line number, line or None when too long)` for every line, reading at most
/// [`MAX_LINE`] bytes of one line into memory. Returns whether the data ended inside a line
/// (no final newline).
fn for_each_line(
    mut reader: impl BufRead,
    mut f: impl FnMut(usize, Option<&[u8]>),
) -> io::Result<bool> {
    let mut line = Vec::new();
    let mut too_long = false;
    let mut number = 0;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        let newline = buf.iter().position(|&b| b == b'\n');
        let chunk = &buf[..newline.unwrap_or(buf.len())];
        if !too_long {
            if line.len() + chunk.len() > MAX_LINE {
                too_long = true;
                line = Vec::new();
            } else {
                line.extend_from_slice(chunk);
            }
        }
        let used = chunk.len() + usize::from(newline.is_some());
        reader.consume(used);
        if newline.is_some() {
            number += 1;
            f(number, (!too_long).then_some(line.as_slice()));
            line.clear();
            too_long = false;
        }
    }
    let torn = too_long || !line.is_empty();
    if torn {
        f(number + 1, (!too_long).then_some(line.as_slice()));
    }
    Ok(torn)
}

/// What [`EventStore::open`] found in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct LoadReport {
    /// Events kept in memory.
    pub events: usize,
    /// Lines skipped because they were not valid events.
    pub bad_lines: usize,
    /// Valid events left out because the file held more than `events_max`.
    pub dropped: usize,
}

/// The append side: the file and the next id, behind one lock so ids follow file order.
struct Writer {
    /// Opened (created) on the first append, so a read-only directory only fails posting.
    file: Option<File>,
    next_id: u64,
    /// How much of the file this process has read or written; more means another process
    /// appended.
    known_len: u64,
    /// The file does not end with a newline (a torn last line or a failed append): the next
    /// append starts one, so a broken line never swallows a good one.
    torn: bool,
}

/// The events of one server, in memory and in their file.
pub(crate) struct EventStore {
    path: PathBuf,
    max_events: usize,
    writer: Mutex<Writer>,
    /// Sorted by `when`, then id.
    events: RwLock<Vec<Event>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves consistent data (appends are all-or-nothing).
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl EventStore {
    /// Loads `path` (a missing file is an empty store). Only an unreadable file fails; bad
    /// lines are skipped, counted and logged. Keeps at most `max_events`, the latest by time.
    pub fn open(path: &Path, max_events: usize) -> io::Result<(EventStore, LoadReport)> {
        let mut events = Vec::new();
        let mut report = LoadReport::default();
        let mut max_id = 0;
        let mut torn = false;
        let mut known_len = 0;
        match File::open(path) {
            Ok(file) => {
                known_len = file.metadata()?.len();
                let mut ids = HashSet::new();
                torn = for_each_line(BufReader::new(file), |number, bytes| {
                    let parsed = match bytes {
                        None => Err(BadLine::TooLong),
                        Some(b) if b.trim_ascii().is_empty() => return,
                        Some(b) => parse_line(b).and_then(|e| {
                            if ids.insert(e.id) {
                                Ok(e)
                            } else {
                                Err(BadLine::DuplicateId(e.id))
                            }
                        }),
                    };
                    match parsed {
                        Ok(e) => {
                            max_id = max_id.max(e.id);
                            events.push(e);
                        }
                        Err(reason) => {
                            report.bad_lines += 1;
                            if report.bad_lines <= LOGGED_BAD_LINES {
                                tracing::warn!(
                                    path = %path.display(),
                                    line = number,
                                    %reason,
                                    "skipping a bad line of the events file"
                                );
                            }
                        }
                    }
                })?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        events.sort_by(|a: &Event, b: &Event| a.when.total_cmp(&b.when).then(a.id.cmp(&b.id)));
        if events.len() > max_events {
            report.dropped = events.len() - max_events;
            events.drain(..report.dropped);
            tracing::warn!(
                path = %path.display(),
                dropped = report.dropped,
                limit = max_events,
                "the events file holds more events than web.events_max; the oldest are not served"
            );
        }
        report.events = events.len();
        if report.bad_lines > 0 {
            tracing::warn!(
                path = %path.display(),
                bad_lines = report.bad_lines,
                "skipped bad lines of the events file"
            );
        }
        tracing::info!(path = %path.display(), events = report.events, "events loaded");
        let store = EventStore {
            path: path.to_owned(),
            max_events,
            writer: Mutex::new(Writer {
                file: None,
                next_id: max_id + 1,
                known_len,
                torn,
            }),
            events: RwLock::new(events),
        };
        Ok((store, report))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<Event>> {
        self.events.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stores an event: appended to the file (and synced) first, then served. Returns its id.
    pub fn append(&self, new: NewEvent) -> Result<u64, EventError> {
        let mut w = lock(&self.writer);
        if self.read().len() >= self.max_events {
            return Err(EventError::Full {
                limit: self.max_events,
            });
        }
        let io_error = |source| EventError::Io {
            path: self.path.clone(),
            source,
        };
        if w.file.is_none() {
            let file = OpenOptions::new()
                .create(true)
                .read(true)
                .append(true)
                .open(&self.path)
                .map_err(io_error)?;
            w.file = Some(file);
        }
        let file = w.file.take().expect("opened above");
        // Exclusive against another Charcoal appending to the same file (an upgrade).
        if let Err(source) = file.lock() {
            w.file = Some(file);
            return Err(io_error(source));
        }
        let result = self.append_locked(&file, &mut w, new);
        let _ = file.unlock();
        match result {
            Ok(event) => {
                w.file = Some(file);
                let id = event.id;
                let mut events = self.events.write().unwrap_or_else(PoisonError::into_inner);
                let at = events.partition_point(|e| e.when <= event.when);
                events.insert(at, event);
                Ok(id)
            }
            Err(source) => {
                // Reopened next time; the next line starts on a line of its own.
                w.torn = true;
                Err(io_error(source))
            }
        }
    }

    /// With the file locked: takes in what another process appended, then writes the event.
    fn append_locked(&self, file: &File, w: &mut Writer, new: NewEvent) -> io::Result<Event> {
        let len = file.metadata()?.len();
        if len > w.known_len {
            self.take_in(file, w)?;
        }
        let id = w.next_id;
        // An id is never handed out twice, even when its write fails half-way.
        w.next_id += 1;
        let event = Event {
            id,
            when: new.when,
            what: new.what,
            data: new.data,
            tags: new.tags,
        };
        let mut bytes = Vec::new();
        if w.torn {
            bytes.push(b'\n');
        }
        bytes.extend(event.to_line());
        bytes.push(b'\n');
        let mut writer = file;
        writer.write_all(&bytes)?;
        writer.sync_data()?;
        w.torn = false;
        w.known_len = file.metadata()?.len();
        Ok(event)
    }

    /// Reads the events another process appended after `w.known_len` into memory (ids it
    /// already has are skipped) and moves the next id past theirs.
    fn take_in(&self, file: &File, w: &mut Writer) -> io::Result<()> {
        let mut reader = file.try_clone()?;
        reader.seek(io::SeekFrom::Start(w.known_len))?;
        let mut added = Vec::new();
        let torn = for_each_line(BufReader::new(reader), |_, bytes| {
            if let Some(Ok(event)) = bytes.map(parse_line) {
                added.push(event);
            }
        })?;
        w.torn = torn;
        w.known_len = file.metadata()?.len();
        let mut events = self.events.write().unwrap_or_else(PoisonError::into_inner);
        for event in added {
            w.next_id = w.next_id.max(event.id + 1);
            if events.iter().any(|e| e.id == event.id) || events.len() >= self.max_events {
                continue;
            }
            let at = events.partition_point(|e| e.when <= event.when);
            events.insert(at, event);
        }
        Ok(())
    }

    /// Events with `from <= when <= until` (both inclusive, as graphite-web), ordered by
    /// `when`. `tags`: `None` for every event; a list (even an empty one, which matches
    /// nothing, as in graphite-web) filtered by `set`.
    pub fn find(&self, from: i64, until: i64, tags: Option<&[String]>, set: TagSet) -> Vec<Event> {
        let events = self.read();
        let (from, until) = (from as f64, until as f64);
        let first = events.partition_point(|e| e.when < from);
        events[first..]
            .iter()
            .take_while(|e| e.when <= until)
            .filter(|e| match (tags, set) {
                (None, _) => true,
                (Some(t), TagSet::All) => !t.is_empty() && e.has_all(t),
                (Some(t), TagSet::Any) => e.has_any(t),
            })
            .cloned()
            .collect()
    }

    /// `events()`: per second of `[start, end)`, how many events carrying every tag of `tags`
    /// (`None`: any event) happened in it; null for none.
    pub fn count_per_second(&self, start: i64, end: i64, tags: Option<&[String]>) -> Vec<f64> {
        let len = usize::try_from(end - start).unwrap_or(0);
        let mut values = vec![NULL; len];
        if len == 0 {
            return values;
        }
        for e in self.find(start, end, tags, TagSet::All) {
            let second = e.when.floor() as i64;
            if let Some(v) = usize::try_from(second - start)
                .ok()
                .and_then(|i| values.get_mut(i))
            {
                *v = if v.is_nan() { 1.0 } else { *v + 1.0 };
            }
        }
        values
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(when: f64, what: &str, tags: &[&str]) -> NewEvent {
        NewEvent {
            when,
            what: what.to_owned(),
            data: String::new(),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        }
    }

    fn tags(list: &[&str]) -> Vec<String> {
        list.iter().map(|t| (*t).to_owned()).collect()
    }

    fn whats(events: &[Event]) -> Vec<&str> {
        events.iter().map(|e| e.what.as_str()).collect()
    }

    #[test]
    fn posted_bodies_like_graphite_web() {
        let e = parse_post(
            br#"{"what": "deploy v1", "tags": ["deploy", "web"], "data": "rolled out", "when": 1700000000}"#,
            5,
        )
        .unwrap();
        assert_eq!(e.what, "deploy v1");
        assert_eq!(e.tags, tags(&["deploy", "web"]));
        assert_eq!((e.data.as_str(), e.when), ("rolled out", 1_700_000_000.0));
        let e = parse_post(br#"{"what": "x", "tags": "db  deploy"}"#, 5).unwrap();
        assert_eq!((e.tags, e.when), (tags(&["db", "deploy"]), 5.0), "now");
        let e = parse_post(br#"{"what": "x", "tags": ["a b", "a"], "when": 1.5}"#, 5).unwrap();
        assert_eq!((e.tags, e.when), (tags(&["a", "b"]), 1.5));
        let e = parse_post(br#"{"what": "x", "tags": "a,b, c"}"#, 5).unwrap();
        assert_eq!(e.tags, tags(&["a", "b", "c"]), "commas separate tags");
        let e = parse_post(br#"{"what": 12, "data": {"k": 1}, "other": true}"#, 5).unwrap();
        assert_eq!((e.what.as_str(), e.data.as_str()), ("12", r#"{"k":1}"#));
        assert!(e.tags.is_empty());
    }

    #[test]
    fn bad_bodies_are_named() {
        let err = |body: &str| parse_post(body.as_bytes(), 5).unwrap_err().to_string();
        assert!(err("not json").starts_with("invalid JSON body"));
        assert_eq!(err("[1]"), "the body must be a JSON object, got an array");
        assert_eq!(err(r#"{"tags": "a"}"#), "\"what\" is required");
        assert_eq!(
            err(r#"{"what": [1]}"#),
            "\"what\" must be a string, got an array"
        );
        // graphite-web's own wording (spec §17).
        let tags_err = "\"tags\" must be an array or space-separated string";
        assert_eq!(err(r#"{"what": "x", "tags": 5}"#), tags_err);
        assert_eq!(err(r#"{"what": "x", "tags": ["a", 1]}"#), tags_err);
        for when in ["\"1700000000\"", "-1", "1e300", "true"] {
            assert!(
                err(&format!(r#"{{"what": "x", "when": {when}}}"#)).starts_with("\"when\""),
                "{when}"
            );
        }
    }

    #[test]
    fn tag_text_splits_on_spaces_and_commas() {
        assert_eq!(split_tags(" a  b,c ,, a\td"), tags(&["a", "b", "c", "d"]));
        assert!(split_tags(" , ").is_empty());
    }

    #[test]
    fn persists_and_reloads_in_time_order_with_increasing_ids() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let store = EventStore::open(&path, 100).unwrap().0;
        assert!(!path.exists(), "created on the first append only");
        assert_eq!(store.append(new(300.0, "late", &["a"])).unwrap(), 1);
        assert_eq!(store.append(new(100.5, "early", &["a", "b"])).unwrap(), 2);
        assert_eq!(store.append(new(200.0, "middle", &[])).unwrap(), 3);
        let all = store.find(0, 1000, None, TagSet::All);
        assert_eq!(whats(&all), ["early", "middle", "late"]);
        drop(store);

        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 3);
        assert!(
            text.starts_with(r#"{"id":1,"when":300,"what":"late","data":"","tags":["a"]}"#),
            "{text}"
        );
        let again = EventStore::open(&path, 100).unwrap().0;
        let reloaded = again.find(0, 1000, None, TagSet::All);
        assert_eq!(reloaded, all);
        assert_eq!(reloaded[0].when, 100.5, "fractions survive");
        assert_eq!(reloaded[0].to_api_json()["when"], 100, "shown truncated");
        assert_eq!(again.append(new(50.0, "next", &[])).unwrap(), 4);
        let keys: Vec<String> = reloaded[0]
            .to_api_json()
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(keys, ["when", "what", "data", "tags", "id"]);
    }

    #[test]
    fn two_processes_appending_to_one_file_keep_ids_unique() {
        // The old and the new process of an upgrade, both serving for a moment.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let old = EventStore::open(&path, 100).unwrap().0;
        assert_eq!(old.append(new(100.0, "first", &["a"])).unwrap(), 1);
        let successor = EventStore::open(&path, 100).unwrap().0;
        assert_eq!(old.append(new(200.0, "old", &["a"])).unwrap(), 2);
        // The successor takes in what the old one added before appending its own.
        assert_eq!(successor.append(new(300.0, "new", &["a"])).unwrap(), 3);
        assert_eq!(
            whats(&successor.find(0, 1000, None, TagSet::All)),
            ["first", "old", "new"]
        );
        assert_eq!(old.append(new(400.0, "old again", &[])).unwrap(), 4);
        let reloaded = EventStore::open(&path, 100).unwrap();
        assert_eq!(reloaded.1.bad_lines, 0, "no duplicate ids in the file");
        assert_eq!(
            whats(&reloaded.0.find(0, 1000, None, TagSet::All)),
            ["first", "old", "new", "old again"]
        );
    }

    #[test]
    fn bad_lines_are_skipped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let long = format!(
            "{{\"id\":9,\"when\":1,\"what\":\"{}\"}}\n",
            "x".repeat(MAX_LINE)
        );
        let text = [
            r#"{"id":1,"when":10,"what":"one","data":"","tags":["a"]}"#,
            "not json",
            "",
            r#"{"id":2,"when":"soon","what":"bad when"}"#,
            r#"{"id":1,"when":20,"what":"duplicate id"}"#,
            r#"{"id":3,"when":-5,"what":"before the epoch"}"#,
            "\u{0}\u{1}binary",
            long.trim_end(),
            r#"{"id":7,"when":30,"what":"seven","extra":1}"#,
            r#"{"id":8,"when":40,"what":"torn"#,
        ]
        .join("\n");
        std::fs::write(&path, text).unwrap();
        let (store, report) = EventStore::open(&path, 100).unwrap();
        assert_eq!(
            report,
            LoadReport {
                events: 2,
                bad_lines: 7,
                dropped: 0
            }
        );
        assert_eq!(
            whats(&store.find(0, 100, None, TagSet::All)),
            ["one", "seven"]
        );
        // The torn last line is closed before the next append, which gets the next id after
        // the valid ones.
        assert_eq!(store.append(new(50.0, "after", &[])).unwrap(), 8);
        drop(store);
        let (again, report) = EventStore::open(&path, 100).unwrap();
        assert_eq!(
            whats(&again.find(0, 100, None, TagSet::All)),
            ["one", "seven", "after"]
        );
        assert_eq!(report.bad_lines, 7);
    }

    #[test]
    fn tag_filters() {
        let dir = tempfile::tempdir().unwrap();
        let store = EventStore::open(&dir.path().join("e.jsonl"), 100)
            .unwrap()
            .0;
        store
            .append(new(10.0, "web deploy", &["deploy", "web"]))
            .unwrap();
        store
            .append(new(20.0, "db deploy", &["db", "deploy"]))
            .unwrap();
        store.append(new(30.0, "untagged", &[])).unwrap();
        let find = |t: &[&str], set| whats(&store.find(0, 100, Some(&tags(t)), set)).join("|");
        assert_eq!(find(&["deploy"], TagSet::All), "web deploy|db deploy");
        assert_eq!(find(&["deploy", "web"], TagSet::All), "web deploy");
        assert_eq!(find(&["deploy", "db", "web"], TagSet::All), "");
        assert_eq!(find(&["deploy", "nosuch"], TagSet::All), "");
        assert_eq!(find(&["web", "db"], TagSet::Any), "web deploy|db deploy");
        assert_eq!(find(&["nosuch"], TagSet::Any), "");
        assert_eq!(
            find(&[], TagSet::All),
            "",
            "an empty tag list matches nothing"
        );
        assert_eq!(TagSet::from_param(Some("union")), TagSet::Any);
        assert_eq!(TagSet::from_param(Some("intersection")), TagSet::All);
        assert_eq!(TagSet::from_param(Some("bogus")), TagSet::All);
        assert_eq!(TagSet::from_param(None), TagSet::All);
        // The window is inclusive at both ends; a reversed one is empty.
        assert_eq!(whats(&store.find(10, 20, None, TagSet::All)).len(), 2);
        assert!(store.find(20, 10, None, TagSet::All).is_empty());
    }

    #[test]
    fn counts_per_second() {
        let dir = tempfile::tempdir().unwrap();
        let store = EventStore::open(&dir.path().join("e.jsonl"), 100)
            .unwrap()
            .0;
        for when in [100.0, 102.2, 102.9, 105.0] {
            store.append(new(when, "e", &["a"])).unwrap();
        }
        store.append(new(101.0, "other", &["b"])).unwrap();
        let v = store.count_per_second(100, 105, Some(&tags(&["a"])));
        let shown: Vec<Option<f64>> = v.iter().map(|x| (!x.is_nan()).then_some(*x)).collect();
        // The event at the window's end (105) is outside [100, 105).
        assert_eq!(shown, [Some(1.0), None, Some(2.0), None, None]);
        let any = store.count_per_second(100, 105, None);
        assert_eq!(any[1], 1.0);
        assert!(store.count_per_second(105, 100, None).is_empty());
    }

    #[test]
    fn limits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.jsonl");
        let store = EventStore::open(&path, 2).unwrap().0;
        store.append(new(30.0, "c", &[])).unwrap();
        store.append(new(10.0, "a", &[])).unwrap();
        let full = store.append(new(20.0, "b", &[])).unwrap_err();
        assert!(matches!(full, EventError::Full { limit: 2 }), "{full}");
        drop(store);
        // A file with more events than the limit serves the latest ones.
        std::fs::write(
            &path,
            (1..=5)
                .map(|i| format!("{{\"id\":{i},\"when\":{},\"what\":\"e{i}\"}}\n", 6 - i))
                .collect::<String>(),
        )
        .unwrap();
        let (store, report) = EventStore::open(&path, 3).unwrap();
        assert_eq!(report.dropped, 2);
        assert_eq!(
            whats(&store.find(0, 100, None, TagSet::All)),
            ["e3", "e2", "e1"]
        );
    }

    #[test]
    fn an_unwritable_file_fails_the_append_only() {
        let dir = tempfile::tempdir().unwrap();
        // Its directory does not exist: nothing to read, and appends fail naming the path.
        let path = dir.path().join("missing").join("events.jsonl");
        let store = EventStore::open(&path, 10).unwrap().0;
        let err = store.append(new(1.0, "x", &[])).unwrap_err();
        assert!(matches!(err, EventError::Io { .. }), "{err}");
        assert!(err.to_string().contains("missing"), "{err}");
        assert!(store.find(0, 10, None, TagSet::All).is_empty());
        // Once the directory exists the next append works (the failed one used no id: it
        // failed before one was handed out).
        std::fs::create_dir(path.parent().unwrap()).unwrap();
        assert_eq!(store.append(new(2.0, "y", &[])).unwrap(), 1);
        assert_eq!(whats(&store.find(0, 10, None, TagSet::All)), ["y"]);
    }
}
