//! Reading several nodes as one, like graphite-web's `CLUSTER_SERVERS`: [`ClusterSource`]
//! answers from this node's own source and from every peer's HTTP API at once, each peer
//! request bounded by a timeout and a response size. A peer that is down, slow or answers
//! nonsense is left out of that answer and logged (rate-limited) — a partial result, never an
//! error page. Carbon-c-relay (or any consistent-hashing relay) decides which node stores
//! which metric; this module only reads.
//!
//! What a peer is asked, always with `local=1` so that it answers from its own data and never
//! fans out in turn (graphite-web `finders/remote.py`, `readers/remote.py`); the endpoints are
//! ones graphite-web 1.1 and Charcoal both serve:
//! - find: `/metrics/find/` with `format=json` — nodes are united, a path that is a leaf on one
//!   node and a branch on another is listed as both (graphite-web `storage.py` `_list_nodes`);
//! - fetch: `/render/` with `format=raw` and the request's own path expression (or
//!   `seriesByTag` call) as one bulk `target`, like graphite-web's `prefetchData`; raw keeps each
//!   series' start, end and step exactly;
//! - tags: `/tags/findSeries`; the metric index: `/metrics/index.json`.
//!
//! A series several nodes hold (a relay rebalanced, or a replica) is merged as graphite-web does
//! with its default `REMOTE_STORE_MERGE_RESULTS` (`render/datalib.py` `_merge_results`): the
//! local copy first, then peers in configured order fill its null slots. Where the copies'
//! shapes differ (other retention), graphite-web replaces the known copy outright; Charcoal keeps
//! whichever has more values.
//!
//! The [`MetricSource`] calls are blocking (the HTTP layer evaluates on the blocking pool), so
//! the peer requests run as tasks on the Tokio runtime the source was created in while the
//! calling thread reads the local source, then waits for the peers' answers.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::config::Config;
use crate::error::SourceError;
use crate::source::{FetchIter, FetchedSeries, FindMatch, MetricSource, Selector};

/// Largest answer accepted from one peer for one request; a larger one is dropped, so a peer
/// cannot make this node run out of memory.
const MAX_RESPONSE_BYTES: usize = 256 * 1024 * 1024;

/// At most one warning per peer per this interval; the failures in between are counted in the
/// next warning's `suppressed` field.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// How long the calling thread waits past a request's own timeout before it stops waiting for
/// that peer (the request task times itself out; this only covers a stalled runtime).
const COLLECT_MARGIN: Duration = Duration::from_millis(500);

/// How much of a peer's error body is kept for the log.
const ERROR_EXCERPT: usize = 300;

/// A cluster that cannot be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// A `cluster_servers` entry that is not a usable base URL.
    #[error("web.cluster_servers: '{url}': {reason}")]
    BadPeer { url: String, reason: String },
    /// [`ClusterSource::new`] was called outside a Tokio runtime.
    #[error("a cluster source runs its peer requests on Tokio: create it inside the runtime")]
    NoRuntime,
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client for cluster peers: {0}")]
    Client(#[source] reqwest::Error),
}

/// Why one peer's answer to one request was left out.
#[derive(Debug, thiserror::Error)]
enum PeerError {
    #[error("request failed: {0}")]
    Transport(#[source] reqwest::Error),
    #[error("no answer within {}", humantime::format_duration(*.0))]
    Timeout(Duration),
    #[error("answered HTTP {status}: {body}")]
    Status { status: u16, body: String },
    #[error("answer larger than {MAX_RESPONSE_BYTES} bytes")]
    TooLarge,
    #[error("unreadable answer: {0}")]
    Decode(String),
}

impl PeerError {
    /// True when the peer itself looks unavailable (as opposed to refusing this one query),
    /// so it is skipped for `cluster_retry_delay`.
    fn peer_is_down(&self) -> bool {
        match self {
            PeerError::Transport(_) | PeerError::Timeout(_) => true,
            PeerError::Status { status, .. } => *status >= 500,
            PeerError::TooLarge | PeerError::Decode(_) => false,
        }
    }
}

/// Counters of peer requests, for self-monitoring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClusterStats {
    /// Requests sent to peers.
    pub requests: u64,
    /// Requests whose answer was left out (refused, timed out, error status, unreadable).
    pub failures: u64,
    /// Requests not sent because the peer failed less than `cluster_retry_delay` ago.
    pub skipped: u64,
}

/// One configured peer.
#[derive(Debug)]
struct Peer {
    /// Base URL without a trailing slash; endpoint paths are appended to it.
    base: String,
    /// When the peer last looked down; it is skipped until `cluster_retry_delay` has passed.
    down_since: Mutex<Option<Instant>>,
    /// Warning rate limit: when the last warning about this peer was logged, and how many
    /// failures were not logged since.
    warned: Mutex<(Option<Instant>, u64)>,
}

/// A [`MetricSource`] over this node's own source and the HTTP APIs of its cluster peers
/// (`cluster_servers`). Create it inside the Tokio runtime that serves the API; call it from
/// blocking contexts (the HTTP layer's blocking pool), as every [`MetricSource`].
pub struct ClusterSource {
    /// This node's own data; also what `local=1` requests read.
    local: Arc<dyn MetricSource>,
    /// The peers, in configured order (the order in which copies of a series are merged).
    peers: Vec<Arc<Peer>>,
    /// Shared connection pool for every peer.
    client: reqwest::Client,
    /// The runtime that runs the peer requests.
    runtime: tokio::runtime::Handle,
    find_timeout: Duration,
    fetch_timeout: Duration,
    retry_delay: Duration,
    requests: AtomicU64,
    failures: AtomicU64,
    skipped: AtomicU64,
}

impl std::fmt::Debug for ClusterSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterSource")
            .field(
                "peers",
                &self.peers.iter().map(|p| &p.base).collect::<Vec<_>>(),
            )
            .field("find_timeout", &self.find_timeout)
            .field("fetch_timeout", &self.fetch_timeout)
            .field("retry_delay", &self.retry_delay)
            .finish_non_exhaustive()
    }
}

/// The source the web API should read: `local` itself when `config.cluster_servers` is empty,
/// otherwise a [`ClusterSource`] over it and the peers. Call it inside the Tokio runtime that
/// serves the API.
pub fn source_for(
    local: Arc<dyn MetricSource>,
    config: &Config,
) -> Result<Arc<dyn MetricSource>, ClusterError> {
    if config.cluster_servers.is_empty() {
        return Ok(local);
    }
    Ok(Arc::new(ClusterSource::new(local, config)?))
}

/// Checks one `cluster_servers` entry: a plain `http://host[:port][/path]` base URL (no TLS in
/// this build; no query or fragment, endpoint paths are appended to it).
pub(crate) fn check_peer_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("'{url}' is not a URL: {e}"))?;
    if parsed.scheme() != "http" {
        return Err(format!(
            "'{url}': only http:// peers are supported (put TLS in a proxy in front)"
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!("'{url}' has no host"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(format!("'{url}' must not have a query or fragment"));
    }
    Ok(())
}

impl ClusterSource {
    /// A cluster of `local` and the peers in `config.cluster_servers`, with the configured
    /// timeouts. Fails on a malformed peer URL or outside a Tokio runtime.
    pub fn new(local: Arc<dyn MetricSource>, config: &Config) -> Result<Self, ClusterError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| ClusterError::NoRuntime)?;
        let mut peers = Vec::with_capacity(config.cluster_servers.len());
        for url in &config.cluster_servers {
            check_peer_url(url).map_err(|reason| ClusterError::BadPeer {
                url: url.clone(),
                reason,
            })?;
            peers.push(Arc::new(Peer {
                base: url.trim_end_matches('/').to_owned(),
                down_since: Mutex::new(None),
                warned: Mutex::new((None, 0)),
            }));
        }
        let client = reqwest::Client::builder()
            .connect_timeout(
                config
                    .cluster_find_timeout
                    .min(config.cluster_fetch_timeout),
            )
            .user_agent(concat!("charcoal-web/", env!("CARGO_PKG_VERSION")))
            .no_proxy()
            .build()
            .map_err(ClusterError::Client)?;
        Ok(ClusterSource {
            local,
            peers,
            client,
            runtime,
            find_timeout: config.cluster_find_timeout,
            fetch_timeout: config.cluster_fetch_timeout,
            retry_delay: config.cluster_retry_delay,
            requests: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
        })
    }

    /// Counters of the requests sent to peers so far.
    pub fn stats(&self) -> ClusterStats {
        ClusterStats {
            requests: self.requests.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
        }
    }

    /// Starts `request` on every peer that is not being skipped; the answers are read with
    /// [`ClusterSource::collect`].
    fn ask<T, F, Fut>(&self, what: &'static str, timeout: Duration, request: F) -> Pending<T>
    where
        T: Send + 'static,
        F: Fn(reqwest::Client, &str) -> Fut,
        Fut: Future<Output = Result<T, PeerError>> + Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::channel();
        let mut asked = Vec::with_capacity(self.peers.len());
        for (i, peer) in self.peers.iter().enumerate() {
            if !self.available(peer) {
                self.skipped.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(peer = %peer.base, request = what, "cluster peer skipped after a recent failure");
                continue;
            }
            self.requests.fetch_add(1, Ordering::Relaxed);
            asked.push(i);
            let future = request(self.client.clone(), &peer.base);
            let tx = tx.clone();
            self.runtime.spawn(async move {
                let answer = tokio::time::timeout(timeout, future)
                    .await
                    .unwrap_or(Err(PeerError::Timeout(timeout)));
                // The caller may have stopped waiting; then the answer is dropped.
                let _ = tx.send((i, answer));
            });
        }
        Pending {
            rx,
            asked,
            what,
            timeout,
            deadline: Instant::now() + timeout + COLLECT_MARGIN,
        }
    }

    /// Waits for the answers of [`ClusterSource::ask`]; returns the successful ones in peer
    /// order. Failures are counted, logged (rate-limited) and mark a down peer.
    fn collect<T>(&self, pending: Pending<T>) -> Vec<T> {
        let mut answers: Vec<Option<Result<T, PeerError>>> =
            (0..self.peers.len()).map(|_| None).collect();
        let mut waiting = pending.asked.len();
        while waiting > 0 {
            let left = pending.deadline.saturating_duration_since(Instant::now());
            match pending.rx.recv_timeout(left) {
                Ok((i, answer)) => {
                    answers[i] = Some(answer);
                    waiting -= 1;
                }
                Err(_) => break,
            }
        }
        let mut out = Vec::with_capacity(pending.asked.len());
        for &i in &pending.asked {
            let answer = answers[i]
                .take()
                .unwrap_or(Err(PeerError::Timeout(pending.timeout)));
            match answer {
                Ok(v) => {
                    self.succeeded(&self.peers[i]);
                    out.push(v);
                }
                Err(e) => self.failed(&self.peers[i], pending.what, &e),
            }
        }
        out
    }

    fn available(&self, peer: &Peer) -> bool {
        let down = peer
            .down_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        down.is_none_or(|t| t.elapsed() >= self.retry_delay)
    }

    fn succeeded(&self, peer: &Peer) {
        // graphite-web resets a peer's failure time on every success, re-enabling it.
        *peer
            .down_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }

    fn failed(&self, peer: &Peer, what: &'static str, error: &PeerError) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        if error.peer_is_down() {
            *peer
                .down_since
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
        }
        let mut warned = peer.warned.lock().unwrap_or_else(PoisonError::into_inner);
        match warned.0 {
            Some(at) if at.elapsed() < WARN_EVERY => {
                warned.1 += 1;
                tracing::debug!(peer = %peer.base, request = what, %error, "cluster peer left out of the answer");
            }
            _ => {
                tracing::warn!(
                    peer = %peer.base,
                    request = what,
                    %error,
                    suppressed = warned.1,
                    retry_in_ms = if error.peer_is_down() { self.retry_delay.as_millis() as u64 } else { 0 },
                    "cluster peer left out of the answer; results are partial"
                );
                *warned = (Some(Instant::now()), 0);
            }
        }
    }

    /// Every peer's series for a render `target` over one window.
    fn ask_render(
        &self,
        target: String,
        from: i64,
        until: i64,
        now: i64,
    ) -> Pending<Vec<(String, FetchedSeries)>> {
        self.ask("render", self.fetch_timeout, move |client, base| {
            let form = vec![
                ("local", "1".to_owned()),
                ("format", "raw".to_owned()),
                ("noCache", "1".to_owned()),
                ("from", from.to_string()),
                ("until", until.to_string()),
                ("now", now.to_string()),
                ("target", target.clone()),
            ];
            let url = format!("{base}/render/");
            async move { parse_raw(&post(client, url, form).await?) }
        })
    }

    /// Every peer's tagged series matching `exprs`.
    fn ask_tagged(&self, exprs: Vec<String>) -> Pending<Vec<String>> {
        self.ask("tags", self.find_timeout, move |client, base| {
            let mut form = vec![("local", "1".to_owned())];
            form.extend(exprs.iter().map(|e| ("expr", e.clone())));
            let url = format!("{base}/tags/findSeries");
            async move { parse_json::<Vec<String>>(&post(client, url, form).await?) }
        })
    }
}

/// Requests in flight on the peers.
struct Pending<T> {
    rx: std::sync::mpsc::Receiver<(usize, Result<T, PeerError>)>,
    /// Indices of the peers asked.
    asked: Vec<usize>,
    what: &'static str,
    timeout: Duration,
    deadline: Instant,
}

/// A `/metrics/find?format=json` entry (graphite-web `json_nodes`; `intervals` is ignored).
#[derive(Debug, Deserialize)]
struct FindNode {
    path: String,
    is_leaf: bool,
}

/// POSTs a form (graphite-web's `REMOTE_STORE_USE_POST`: no URL length limit for long
/// targets) and reads the answer, at most [`MAX_RESPONSE_BYTES`].
async fn post(
    client: reqwest::Client,
    url: String,
    form: Vec<(&'static str, String)>,
) -> Result<Vec<u8>, PeerError> {
    let mut response = client
        .post(url)
        .form(&form)
        .send()
        .await
        .map_err(PeerError::Transport)?;
    let status = response.status();
    if response
        .content_length()
        .is_some_and(|n| n > MAX_RESPONSE_BYTES as u64)
    {
        return Err(PeerError::TooLarge);
    }
    let limit = if status.is_success() {
        MAX_RESPONSE_BYTES
    } else {
        ERROR_EXCERPT
    };
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(PeerError::Transport)? {
        if body.len() + chunk.len() > limit {
            if !status.is_success() {
                body.extend_from_slice(&chunk[..limit - body.len()]);
                break;
            }
            return Err(PeerError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    if !status.is_success() {
        return Err(PeerError::Status {
            status: status.as_u16(),
            body: String::from_utf8_lossy(&body).trim().to_owned(),
        });
    }
    Ok(body)
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, PeerError> {
    serde_json::from_slice(body).map_err(|e| PeerError::Decode(e.to_string()))
}

/// Parses `format=raw` (spec §3.3): `name,start,end,step|v1,v2,...` per line, `None` for nulls.
/// The name may itself contain `,` or `|`, so the fields are taken from the right.
fn parse_raw(body: &[u8]) -> Result<Vec<(String, FetchedSeries)>, PeerError> {
    let text = std::str::from_utf8(body).map_err(|e| PeerError::Decode(e.to_string()))?;
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let bad = |why: &str| {
            let excerpt: String = line.chars().take(80).collect();
            PeerError::Decode(format!("raw series line '{excerpt}': {why}"))
        };
        let (head, values) = line.rsplit_once('|').ok_or_else(|| bad("no '|'"))?;
        let mut fields = head.rsplitn(4, ',');
        let mut int = |what: &str| {
            fields
                .next()
                .and_then(|f| f.parse::<i64>().ok())
                .ok_or_else(|| bad(what))
        };
        let (step, end, start) = (int("step")?, int("end")?, int("start")?);
        let name = fields
            .next()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| bad("no name"))?;
        if step <= 0 || end < start {
            return Err(bad("bad time range"));
        }
        let values = if values.is_empty() {
            Vec::new()
        } else {
            values
                .split(',')
                .map(|v| match v {
                    "None" => Ok(None),
                    v => v.parse::<f64>().map(Some).map_err(|_| bad("bad value")),
                })
                .collect::<Result<Vec<_>, _>>()?
        };
        out.push((
            name.to_owned(),
            FetchedSeries {
                start,
                end,
                step,
                values,
            },
        ));
    }
    Ok(out)
}

/// Merges another node's copy of a series into the one known so far (see the module doc):
/// same shape → its values fill the known copy's nulls; another shape → the copy with more
/// values wins.
fn merge(known: &mut Option<FetchedSeries>, candidate: FetchedSeries) {
    let Some(k) = known else {
        *known = Some(candidate);
        return;
    };
    let present = |s: &FetchedSeries| s.values.iter().filter(|v| v.is_some()).count();
    if present(k) == k.values.len() || candidate.values.is_empty() {
        return;
    }
    if k.start == candidate.start
        && k.step == candidate.step
        && k.values.len() == candidate.values.len()
    {
        for (slot, value) in k.values.iter_mut().zip(candidate.values) {
            if slot.is_none() {
                *slot = value;
            }
        }
    } else if present(&candidate) > present(k) {
        *k = candidate;
    }
}

/// A path expression written back as target text: the characters the target grammar treats as
/// syntax are escaped again (commas only outside `{...}`, where they separate alternatives).
fn path_target(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 8);
    let mut depth = 0usize;
    for c in path.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            '(' | ')' | '\'' | '"' | '\\' | '|' => out.push('\\'),
            ',' if depth == 0 => out.push('\\'),
            _ => {}
        }
        out.push(c);
    }
    out
}

/// `seriesByTag('e1','e2')` for a peer.
fn tags_target(exprs: &[String]) -> String {
    let quoted: Vec<String> = exprs
        .iter()
        .map(|e| {
            if e.contains('\'') {
                format!("\"{e}\"")
            } else {
                format!("'{e}'")
            }
        })
        .collect();
    format!("seriesByTag({})", quoted.join(","))
}

fn selector_target(selector: Selector<'_>) -> String {
    match selector {
        Selector::Path(p) => path_target(p),
        Selector::Tags(exprs) => tags_target(exprs),
    }
}

impl MetricSource for ClusterSource {
    fn find(&self, pattern: &str) -> Result<Vec<FindMatch>, SourceError> {
        let query = pattern.to_owned();
        let pending = self.ask("find", self.find_timeout, move |client, base| {
            let form = vec![
                ("local", "1".to_owned()),
                ("format", "json".to_owned()),
                ("query", query.clone()),
            ];
            let url = format!("{base}/metrics/find/");
            async move { parse_json::<Vec<FindNode>>(&post(client, url, form).await?) }
        });
        let local = self.local.find(pattern);
        let remote = self.collect(pending);
        let mut all: BTreeSet<FindMatch> = local?.into_iter().collect();
        all.extend(remote.into_iter().flatten().map(|n| FindMatch {
            path: n.path,
            is_leaf: n.is_leaf,
        }));
        Ok(all.into_iter().collect())
    }

    fn fetch(
        &self,
        name: &str,
        from: i64,
        until: i64,
        now: i64,
    ) -> Result<Option<FetchedSeries>, SourceError> {
        let pending = self.ask_render(path_target(name), from, until, now);
        let mut known = self.local.fetch(name, from, until, now)?;
        for series in self.collect(pending) {
            for (n, s) in series {
                if n == name {
                    merge(&mut known, s);
                }
            }
        }
        Ok(known)
    }

    fn fetch_selection<'a>(
        &'a self,
        selector: Selector<'_>,
        names: &'a [String],
        from: i64,
        until: i64,
        now: i64,
    ) -> Result<FetchIter<'a>, SourceError> {
        let mut copies: HashMap<String, Vec<FetchedSeries>> = HashMap::new();
        if !names.is_empty() && !self.peers.is_empty() {
            let pending = self.ask_render(selector_target(selector), from, until, now);
            let wanted: HashSet<&str> = names.iter().map(String::as_str).collect();
            for series in self.collect(pending) {
                for (n, s) in series {
                    if wanted.contains(n.as_str()) {
                        copies.entry(n).or_default().push(s);
                    }
                }
            }
        }
        let local = &self.local;
        Ok(Box::new(names.iter().map(move |name| {
            let mut known = local.fetch(name, from, until, now)?;
            for s in copies.remove(name).unwrap_or_default() {
                merge(&mut known, s);
            }
            Ok(known)
        })))
    }

    fn tagged_series(&self) -> Result<Vec<String>, SourceError> {
        // `name!=` matches every tagged series and is a valid findSeries query (it cannot
        // match the empty string).
        let pending = self.ask_tagged(vec!["name!=".to_owned()]);
        let local = self.local.tagged_series();
        let remote = self.collect(pending);
        united(local?, remote)
    }

    fn find_tagged(&self, expressions: &[String]) -> Result<Vec<String>, SourceError> {
        let pending = self.ask_tagged(expressions.to_vec());
        let local = self.local.find_tagged(expressions);
        let remote = self.collect(pending);
        united(local?, remote)
    }

    fn leaves(&self) -> Result<Vec<String>, SourceError> {
        let pending = self.ask("index", self.find_timeout, |client, base| {
            let url = format!("{base}/metrics/index.json");
            async move {
                parse_json::<Vec<String>>(
                    &post(client, url, vec![("local", "1".to_owned())]).await?,
                )
            }
        });
        let local = self.local.leaves();
        let remote = self.collect(pending);
        united(local?, remote)
    }

    fn local_source(&self) -> Option<Arc<dyn MetricSource>> {
        Some(Arc::clone(&self.local))
    }
}

/// The sorted, de-duplicated union of the local names and the peers'.
fn united(local: Vec<String>, remote: Vec<Vec<String>>) -> Result<Vec<String>, SourceError> {
    let mut all = local;
    all.extend(remote.into_iter().flatten());
    all.sort_unstable();
    all.dedup();
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(start: i64, step: i64, values: &[Option<f64>]) -> FetchedSeries {
        FetchedSeries {
            start,
            end: start + step * values.len() as i64,
            step,
            values: values.to_vec(),
        }
    }

    #[test]
    fn raw_lines_parse_with_the_fields_taken_from_the_right() {
        // The line observed from graphite-web in spec §3.3.
        let got = parse_raw(
            b"test.web1.cpu.user,1795759740,1795760040,60|37.668,36.696,None,None,None\n",
        )
        .unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, "test.web1.cpu.user");
        assert_eq!(
            got[0].1,
            FetchedSeries {
                start: 1_795_759_740,
                end: 1_795_760_040,
                step: 60,
                values: vec![Some(37.668), Some(36.696), None, None, None],
            }
        );
        let odd = parse_raw(b"a,b|c,10,20,10|4,inf\nempty,0,0,60|\n").unwrap();
        assert_eq!(odd[0].0, "a,b|c");
        assert_eq!(odd[0].1.values, vec![Some(4.0), Some(f64::INFINITY)]);
        assert_eq!(odd[1].1.values, Vec::<Option<f64>>::new());
        for bad in [&b"x,1,2|3"[..], b"x,1,2,0|3", b"x,1,2,3|nope", b"1,2,3|4"] {
            assert!(parse_raw(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn merge_fills_nulls_of_the_first_copy() {
        let mut known = Some(series(60, 60, &[Some(1.0), None, None]));
        merge(&mut known, series(60, 60, &[Some(9.0), Some(2.0), None]));
        merge(&mut known, series(60, 60, &[None, Some(8.0), Some(3.0)]));
        assert_eq!(known.unwrap().values, vec![Some(1.0), Some(2.0), Some(3.0)]);

        let mut none = None;
        merge(&mut none, series(60, 60, &[Some(5.0)]));
        assert_eq!(none.unwrap().values, vec![Some(5.0)]);

        // Other shapes: the copy with more values wins.
        let mut known = Some(series(60, 60, &[Some(1.0), None, None]));
        merge(&mut known, series(0, 10, &[Some(1.0), Some(2.0)]));
        assert_eq!(known.as_ref().unwrap().step, 10);
        merge(&mut known, series(0, 60, &[Some(7.0)]));
        assert_eq!(known.unwrap().step, 10, "fewer values never replace");
    }

    #[test]
    fn targets_for_peers_escape_what_the_parser_unescaped() {
        assert_eq!(path_target("a.{b,c}.d*"), "a.{b,c}.d*");
        assert_eq!(path_target("a.b(x),y"), r"a.b\(x\)\,y");
        assert_eq!(path_target("disk.used;dc=east"), "disk.used;dc=east");
        assert_eq!(
            tags_target(&["name=cpu".to_owned(), "dc=~e.*".to_owned()]),
            "seriesByTag('name=cpu','dc=~e.*')"
        );
        // What the peer parses is the path the front end evaluated.
        for path in ["a.b(x),y", "a.{b,c}.d*", r"x\y.z|w"] {
            let parsed = crate::parse::parse_target(&path_target(path), 8).unwrap();
            assert_eq!(parsed, crate::parse::Expr::Path(path.to_owned()));
        }
    }

    #[test]
    fn peer_urls_are_plain_http_bases() {
        assert!(check_peer_url("http://10.0.0.1:8080").is_ok());
        assert!(check_peer_url("http://graphite.example/graphite/").is_ok());
        assert!(check_peer_url("https://a:8080").is_err());
        assert!(check_peer_url("10.0.0.1:8080").is_err());
        assert!(check_peer_url("http://a:8080/?format=pickle").is_err());
        let bad = Config {
            cluster_servers: vec!["https://a".into()],
            ..Config::default()
        };
        assert_eq!(bad.validate().unwrap_err().key, "cluster_servers");
        let zero = Config {
            cluster_fetch_timeout: Duration::ZERO,
            ..Config::default()
        };
        assert_eq!(zero.validate().unwrap_err().key, "cluster_fetch_timeout");
        let parsed: Config = serde_json::from_str(
            r#"{"cluster_servers": ["http://a:8080"], "cluster_find_timeout": "250ms", "cluster_retry_delay": "0s"}"#,
        )
        .unwrap();
        assert_eq!(parsed.cluster_find_timeout, Duration::from_millis(250));
        assert_eq!(parsed.cluster_retry_delay, Duration::ZERO);
        assert!(parsed.validate().is_ok());
    }

    #[test]
    fn new_needs_a_runtime() {
        let config = Config {
            cluster_servers: vec!["http://127.0.0.1:9".into()],
            ..Config::default()
        };
        let local: Arc<dyn MetricSource> = Arc::new(crate::MemorySource::new());
        assert!(matches!(
            ClusterSource::new(local, &config),
            Err(ClusterError::NoRuntime)
        ));
    }
}
