//! Reads an Etsy StatsD configuration file (a JavaScript object literal, as in Etsy's
//! `exampleConfig.js`) into a [`Config`] plus listen addresses and the Graphite target, so
//! `charcoal statsd --etsy-config config.js` can replace `node stats.js config.js`
//! (cli.md). Keys with no equivalent are collected for one warning.

use std::path::PathBuf;

use crate::config::{Bin, Config, HealthStatus, HistogramRule};
use crate::error::EtsyConfigError;
use crate::jsnum::js_number;

/// Which of Etsy's server modules a listener entry names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenKind {
    /// `./servers/udp` (the default).
    Udp,
    /// `./servers/tcp`.
    Tcp,
}

/// One entry of Etsy's `servers` (or the top-level single-server keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtsyListen {
    /// Server module.
    pub kind: ListenKind,
    /// Host to bind (Etsy's default: all interfaces, `0.0.0.0`, or `::` with
    /// `address_ipv6`).
    pub host: String,
    /// Port (default 8125).
    pub port: u16,
    /// `address_ipv6`.
    pub ipv6: bool,
    /// TCP only: a Unix socket path to listen on instead of host/port.
    pub socket: Option<PathBuf>,
    /// TCP only: file mode applied to `socket` (`socket_mod`).
    pub socket_mode: Option<u32>,
}

impl EtsyListen {
    /// `host:port` (IPv6 hosts bracketed), for binding.
    pub fn address(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// What an Etsy configuration file asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct EtsyConfig {
    /// The aggregation settings.
    pub statsd: Config,
    /// Listeners (UDP and TCP).
    pub listen: Vec<EtsyListen>,
    /// Admin interface `host:port` (`mgmt_address`, `mgmt_port`; Etsy's defaults
    /// `0.0.0.0:8126`).
    pub admin: String,
    /// `graphiteHost:graphitePort`; `None` when `graphiteHost` is unset (Etsy then computes
    /// and discards every flush).
    pub graphite: Option<String>,
    /// Keys (and values) with no equivalent here; the caller logs them in one warning.
    pub unsupported: Vec<String>,
}

impl EtsyConfig {
    /// The one warning listing unsupported keys, if any.
    pub fn warning(&self) -> Option<String> {
        (!self.unsupported.is_empty()).then(|| {
            format!(
                "etsy config: ignoring unsupported keys: {}",
                self.unsupported.join(", ")
            )
        })
    }
}

/// A JavaScript value as the object literal wrote it.
#[derive(Debug, Clone, PartialEq)]
enum Js {
    Undefined,
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Js>),
    Obj(Vec<(String, Js)>),
}

impl Js {
    fn truthy(&self) -> bool {
        match self {
            Js::Undefined | Js::Null => false,
            Js::Bool(b) => *b,
            Js::Num(n) => *n != 0.0 && !n.is_nan(),
            Js::Str(s) => !s.is_empty(),
            Js::Arr(_) | Js::Obj(_) => true,
        }
    }

    /// JavaScript `Number(v)`.
    fn number(&self) -> f64 {
        match self {
            Js::Undefined => f64::NAN,
            Js::Null => 0.0,
            Js::Bool(b) => f64::from(u8::from(*b)),
            Js::Num(n) => *n,
            Js::Str(s) => js_number(s),
            Js::Arr(_) | Js::Obj(_) => f64::NAN,
        }
    }

    /// JavaScript `String(v)` for scalars.
    fn string(&self) -> String {
        match self {
            Js::Undefined => "undefined".into(),
            Js::Null => "null".into(),
            Js::Bool(b) => b.to_string(),
            Js::Num(n) => crate::jsnum::js_number_string(*n),
            Js::Str(s) => s.clone(),
            Js::Arr(a) => a.iter().map(Js::string).collect::<Vec<_>>().join(","),
            Js::Obj(_) => "[object Object]".into(),
        }
    }

    fn get(&self, key: &str) -> &Js {
        match self {
            Js::Obj(entries) => entries
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map_or(&Js::Undefined, |(_, v)| v),
            _ => &Js::Undefined,
        }
    }
}

struct Reader<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Reader<'a> {
    fn err(&self, reason: impl Into<String>) -> EtsyConfigError {
        let before = &self.src[..self.pos.min(self.src.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        EtsyConfigError::Syntax {
            line,
            column,
            reason: reason.into(),
        }
    }

    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn skip(&mut self) -> Result<(), EtsyConfigError> {
        loop {
            let rest = &self.src[self.pos..];
            if let Some(c) = rest.chars().next()
                && (c.is_whitespace() || c == '\u{feff}')
            {
                self.pos += c.len_utf8();
            } else if rest.starts_with("//") {
                self.pos += rest.find('\n').unwrap_or(rest.len());
            } else if let Some(body) = rest.strip_prefix("/*") {
                match body.find("*/") {
                    Some(e) => self.pos += e + 4,
                    None => return Err(self.err("unterminated comment")),
                }
            } else {
                return Ok(());
            }
        }
    }

    fn eat(&mut self, c: char) -> Result<bool, EtsyConfigError> {
        self.skip()?;
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            Ok(true)
        } else {
            Ok(false)
        }
    }

    fn word(&mut self) -> &'a str {
        let rest = &self.src[self.pos..];
        let n = rest
            .char_indices()
            .find(|&(_, c)| {
                !(c.is_alphanumeric() || c == '_' || c == '$' || c == '.' || c == '+' || c == '-')
            })
            .map_or(rest.len(), |(i, _)| i);
        self.pos += n;
        &rest[..n]
    }

    fn ident(&mut self) -> &'a str {
        let rest = &self.src[self.pos..];
        let n = rest
            .char_indices()
            .find(|&(_, c)| !(c.is_alphanumeric() || c == '_' || c == '$'))
            .map_or(rest.len(), |(i, _)| i);
        self.pos += n;
        &rest[..n]
    }

    fn string(&mut self, quote: char) -> Result<String, EtsyConfigError> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.err("unterminated string"));
            };
            self.pos += c.len_utf8();
            match c {
                c if c == quote => return Ok(out),
                '\\' => {
                    let Some(e) = self.peek() else {
                        return Err(self.err("unterminated string"));
                    };
                    self.pos += e.len_utf8();
                    match e {
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        'r' => out.push('\r'),
                        'b' => out.push('\u{8}'),
                        'f' => out.push('\u{c}'),
                        'v' => out.push('\u{b}'),
                        '0' => out.push('\0'),
                        '\n' => {}
                        'x' | 'u' => {
                            let n = if e == 'x' { 2 } else { 4 };
                            let hex = self.src.get(self.pos..self.pos + n).unwrap_or("");
                            let ch = u32::from_str_radix(hex, 16)
                                .ok()
                                .and_then(char::from_u32)
                                .ok_or_else(|| self.err("bad escape"))?;
                            self.pos += n;
                            out.push(ch);
                        }
                        other => out.push(other),
                    }
                }
                '\n' if quote != '`' => return Err(self.err("newline in string")),
                '$' if quote == '`' && self.peek() == Some('{') => {
                    return Err(self.err("template expressions are not supported"));
                }
                c => out.push(c),
            }
        }
    }

    fn value(&mut self) -> Result<Js, EtsyConfigError> {
        self.skip()?;
        let Some(c) = self.peek() else {
            return Err(self.err("expected a value"));
        };
        let v = match c {
            '{' => {
                self.pos += 1;
                let mut entries = Vec::new();
                loop {
                    if self.eat('}')? {
                        break;
                    }
                    if self.eat(',')? {
                        continue;
                    }
                    self.skip()?;
                    let key = match self.peek() {
                        Some(q @ ('"' | '\'')) => self.string(q)?,
                        Some(c) if c.is_ascii_digit() => self.word().to_string(),
                        _ => {
                            let k = self.ident();
                            if k.is_empty() {
                                return Err(self.err("expected a key"));
                            }
                            k.to_string()
                        }
                    };
                    if !self.eat(':')? {
                        return Err(self.err(format!("expected ':' after key {key:?}")));
                    }
                    let v = self.value()?;
                    entries.push((key, v));
                    self.skip()?;
                    if !(self.eat(',')? || self.peek() == Some('}')) {
                        return Err(self.err("expected ',' or '}'"));
                    }
                }
                Js::Obj(entries)
            }
            '[' => {
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    if self.eat(']')? {
                        break;
                    }
                    items.push(self.value()?);
                    self.skip()?;
                    if !(self.eat(',')? || self.peek() == Some(']')) {
                        return Err(self.err("expected ',' or ']'"));
                    }
                }
                Js::Arr(items)
            }
            '"' | '\'' | '`' => Js::Str(self.string(c)?),
            _ => {
                let start = self.pos;
                let w = self.word();
                match w {
                    "true" => Js::Bool(true),
                    "false" => Js::Bool(false),
                    "null" => Js::Null,
                    "undefined" => Js::Undefined,
                    "NaN" => Js::Num(f64::NAN),
                    "" => return Err(self.err(format!("unexpected {c:?}"))),
                    w => {
                        let n = js_number(w);
                        if n.is_nan() {
                            self.pos = start;
                            return Err(self.err(format!(
                                "unsupported expression starting {w:?} (only literal values can be read)"
                            )));
                        }
                        Js::Num(n)
                    }
                }
            }
        };
        Ok(v)
    }
}

fn parse_js(text: &str) -> Result<Js, EtsyConfigError> {
    let mut r = Reader { src: text, pos: 0 };
    r.skip()?;
    // `config = {...}` or `module.exports = {...}` forms are also seen in the wild.
    if r.peek() != Some('{') {
        let save = r.pos;
        let _ = r.word();
        if !r.eat('=')? {
            r.pos = save;
        }
    }
    r.skip()?;
    if r.peek() != Some('{') {
        return Err(r.err("expected '{'"));
    }
    let v = r.value()?;
    r.skip()?;
    let _ = r.eat(';')?;
    r.skip()?;
    if r.pos < text.len() {
        return Err(r.err("unexpected text after the object"));
    }
    Ok(v)
}

fn value_err(key: &str, reason: impl Into<String>) -> EtsyConfigError {
    EtsyConfigError::Value {
        key: key.to_string(),
        reason: reason.into(),
    }
}

fn port(v: &Js, key: &str, default: u16) -> Result<u16, EtsyConfigError> {
    if !v.truthy() {
        return Ok(default);
    }
    let n = v.number();
    if n.fract() != 0.0 || !(0.0..=65535.0).contains(&n) {
        return Err(value_err(key, format!("{} is not a port", v.string())));
    }
    Ok(n as u16)
}

fn listen_entry(v: &Js, key: &str) -> Result<EtsyListen, EtsyConfigError> {
    let server = v.get("server");
    let kind = if !server.truthy() {
        ListenKind::Udp
    } else {
        match server.string().trim_end_matches(".js") {
            "./servers/udp" | "servers/udp" | "udp" => ListenKind::Udp,
            "./servers/tcp" | "servers/tcp" | "tcp" => ListenKind::Tcp,
            other => {
                return Err(value_err(
                    &format!("{key}.server"),
                    format!("unknown server module {other:?}"),
                ));
            }
        }
    };
    let ipv6 = v.get("address_ipv6").truthy();
    let address = v.get("address");
    let host = if address.truthy() {
        address.string()
    } else if ipv6 {
        "::".into()
    } else {
        "0.0.0.0".into()
    };
    let socket = v.get("socket");
    let mode = v.get("socket_mod");
    let socket_mode = if mode.truthy() {
        let m = match mode {
            Js::Str(s) => u32::from_str_radix(s.trim_start_matches("0o"), 8).ok(),
            other => {
                let n = other.number();
                (n.fract() == 0.0 && (0.0..65536.0).contains(&n)).then_some(n as u32)
            }
        };
        Some(m.ok_or_else(|| value_err(&format!("{key}.socket_mod"), "not a file mode"))?)
    } else {
        None
    };
    Ok(EtsyListen {
        kind,
        host,
        port: port(v.get("port"), &format!("{key}.port"), 8125)?,
        ipv6,
        socket: (kind == ListenKind::Tcp && socket.truthy())
            .then(|| PathBuf::from(socket.string())),
        socket_mode,
    })
}

/// Parses an Etsy StatsD config file's text.
pub fn parse_etsy_config(text: &str) -> Result<EtsyConfig, EtsyConfigError> {
    let js = parse_js(text)?;
    let Js::Obj(entries) = &js else {
        return Err(value_err("(top level)", "not an object"));
    };
    let mut c = Config::default();
    let mut unsupported = Vec::new();
    let mut graphite_host = None;
    let mut listen = Vec::new();
    let top_server_keys = [
        "port",
        "address",
        "address_ipv6",
        "server",
        "socket",
        "socket_mod",
    ];
    if js.get("servers").truthy() {
        let Js::Arr(items) = js.get("servers") else {
            return Err(value_err("servers", "not an array"));
        };
        for (i, item) in items.iter().enumerate() {
            listen.push(listen_entry(item, &format!("servers[{i}]"))?);
        }
    } else {
        listen.push(listen_entry(&js, "(top level)")?);
    }
    let mgmt_host = js.get("mgmt_address");
    let admin_host = if mgmt_host.truthy() {
        mgmt_host.string()
    } else {
        "0.0.0.0".into()
    };
    let admin_port = port(js.get("mgmt_port"), "mgmt_port", 8126)?;
    let admin = if admin_host.contains(':') {
        format!("[{admin_host}]:{admin_port}")
    } else {
        format!("{admin_host}:{admin_port}")
    };
    let mut seen = std::collections::HashSet::new();
    for (key, v) in entries.iter().rev() {
        if !seen.insert(key.as_str()) {
            continue; // a later duplicate wins, as in JavaScript
        }
        let k = key.as_str();
        match k {
            _ if top_server_keys.contains(&k)
                || k == "servers"
                || k == "mgmt_port"
                || k == "mgmt_address" => {}
            "flushInterval" => {
                let ms = if v.truthy() { v.number() } else { 10_000.0 };
                if !(ms.is_finite() && ms >= 1.0) {
                    return Err(value_err(
                        k,
                        format!("{} is not a positive number of ms", v.string()),
                    ));
                }
                c.flush_interval = std::time::Duration::from_secs_f64(ms / 1000.0);
            }
            "graphiteHost" => graphite_host = v.truthy().then(|| v.string()),
            "graphitePort" | "graphitePicklePort" | "debug" | "title" | "automaticConfigReload" => {
            }
            "graphiteProtocol" => {
                if v.truthy() && v.string() != "text" {
                    unsupported.push(format!("graphiteProtocol={} (text is used)", v.string()));
                }
            }
            "graphite" => {
                let Js::Obj(g) = v else {
                    return Err(value_err(k, "not an object"));
                };
                for (gk, gv) in g {
                    let s = || -> Result<String, EtsyConfigError> {
                        match gv {
                            Js::Str(s) => Ok(s.clone()),
                            Js::Num(_) | Js::Bool(_) => Ok(gv.string()),
                            _ => Err(value_err(&format!("graphite.{gk}"), "not a string")),
                        }
                    };
                    match gk.as_str() {
                        "legacyNamespace" => {
                            if *gv != Js::Undefined {
                                c.legacy_namespace = !matches!(gv, Js::Bool(false));
                            }
                        }
                        "globalPrefix" if *gv != Js::Undefined => c.global_prefix = s()?,
                        "prefixCounter" if *gv != Js::Undefined => c.prefix_counter = s()?,
                        "prefixTimer" if *gv != Js::Undefined => c.prefix_timer = s()?,
                        "prefixGauge" if *gv != Js::Undefined => c.prefix_gauge = s()?,
                        "prefixSet" if *gv != Js::Undefined => c.prefix_set = s()?,
                        "globalSuffix" if *gv != Js::Undefined => c.global_suffix = Some(s()?),
                        "globalPrefix" | "prefixCounter" | "prefixTimer" | "prefixGauge"
                        | "prefixSet" | "globalSuffix" => {}
                        other => unsupported.push(format!("graphite.{other}")),
                    }
                }
            }
            "percentThreshold" => {
                c.percent_threshold = if !v.truthy() {
                    vec![90.0]
                } else if let Js::Arr(items) = v {
                    items.iter().map(Js::number).collect()
                } else {
                    vec![v.number()]
                };
                if c.percent_threshold.iter().any(|p| !p.is_finite()) {
                    return Err(value_err(k, "thresholds must be numbers"));
                }
            }
            "histogram" => {
                let Js::Arr(rules) = v else {
                    if v.truthy() {
                        return Err(value_err(k, "not an array"));
                    }
                    continue;
                };
                c.histogram = rules
                    .iter()
                    .enumerate()
                    .map(|(i, r)| {
                        let Js::Arr(bins) = r.get("bins") else {
                            return Err(value_err(&format!("histogram[{i}].bins"), "not an array"));
                        };
                        let bins = bins
                            .iter()
                            .map(|b| match b {
                                Js::Num(n) => Ok(Bin::Bound(*n)),
                                Js::Str(s) => Ok(Bin::Text(s.clone())),
                                _ => Err(value_err(
                                    &format!("histogram[{i}].bins"),
                                    "bins are numbers or \"inf\"",
                                )),
                            })
                            .collect::<Result<Vec<_>, _>>()?;
                        Ok(HistogramRule {
                            metric: r.get("metric").string(),
                            bins,
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
            }
            "calculatedTimerMetrics" => {
                c.calculated_timer_metrics = match v {
                    Js::Arr(items) => items.iter().map(Js::string).collect(),
                    _ => Vec::new(),
                };
            }
            "flush_counts" => c.flush_counts = *v == Js::Undefined || v.truthy(),
            "deleteIdleStats" => c.delete_idle_stats = v.truthy(),
            "deleteCounters" => c.delete_counters = (*v != Js::Undefined).then(|| v.truthy()),
            "deleteTimers" => c.delete_timers = (*v != Js::Undefined).then(|| v.truthy()),
            "deleteGauges" => c.delete_gauges = (*v != Js::Undefined).then(|| v.truthy()),
            "deleteSets" => c.delete_sets = (*v != Js::Undefined).then(|| v.truthy()),
            "gaugesMaxTTL" => {
                let n = v.number();
                c.gauges_max_ttl = if matches!(v, Js::Num(_)) && n.fract() == 0.0 && n > 1.0 {
                    n.min(f64::from(u32::MAX)) as u32
                } else {
                    1
                };
            }
            "prefixStats" => {
                if *v != Js::Undefined {
                    c.prefix_stats = v.string();
                }
            }
            "keyNameSanitize" => {
                if *v != Js::Undefined {
                    c.key_name_sanitize = v.truthy();
                }
            }
            "healthStatus" => {
                c.health_status = if v.string() == "down" {
                    HealthStatus::Down
                } else {
                    HealthStatus::Up
                };
            }
            "dumpMessages" => c.dump_messages = v.truthy(),
            "backends" => {
                if let Js::Arr(items) = v {
                    for b in items {
                        let name = b.string();
                        if !matches!(
                            name.trim_end_matches(".js"),
                            "./backends/graphite" | "backends/graphite" | "graphite"
                        ) {
                            unsupported.push(format!("backends: {name}"));
                        }
                    }
                }
            }
            other => unsupported.push(other.to_string()),
        }
    }
    unsupported.reverse();
    c.tcp = listen.iter().any(|l| l.kind == ListenKind::Tcp);
    c.validate()
        .map_err(|e| value_err("(config)", e.to_string()))?;
    let graphite_port = port(js.get("graphitePort"), "graphitePort", 2003)?;
    let graphite = graphite_host.map(|h| {
        if h.contains(':') {
            format!("[{h}]:{graphite_port}")
        } else {
            format!("{h}:{graphite_port}")
        }
    });
    Ok(EtsyConfig {
        statsd: c,
        listen,
        admin,
        graphite,
        unsupported,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_of_etsy() {
        // Etsy's exampleConfig.js body (its comment block shortened).
        let text = r#"/*
Graphite Required Variable:
  graphiteHost:     hostname or IP of Graphite server
*/
{
  graphitePort: 2003
, graphiteHost: "graphite.example.com"
, port: 8125
, backends: [ "./backends/graphite" ]
}
"#;
        let e = parse_etsy_config(text).unwrap();
        assert_eq!(e.graphite.as_deref(), Some("graphite.example.com:2003"));
        assert_eq!(e.listen.len(), 1);
        assert_eq!(e.listen[0].address(), "0.0.0.0:8125");
        assert_eq!(e.listen[0].kind, ListenKind::Udp);
        assert_eq!(e.admin, "0.0.0.0:8126");
        assert_eq!(e.statsd, Config::default());
        assert_eq!(e.warning(), None);
    }

    #[test]
    fn every_understood_key() {
        let text = r#"
// a comment
{
  port: 9125, address: '127.0.0.1',
  mgmt_port: 9126, mgmt_address: "127.0.0.1",
  flushInterval: 2500,
  graphiteHost: "127.0.0.1", graphitePort: 12003,
  percentThreshold: [90, 99.9, -10,],
  histogram: [ { metric: 'render', bins: [ 0.01, 0.1, 1, 10, 'inf'] }, { metric: '', bins: [] } ],
  calculatedTimerMetrics: ['count', 'upper_percent'],
  deleteIdleStats: true, deleteCounters: false, gaugesMaxTTL: 3,
  prefixStats: "ps", keyNameSanitize: false, flush_counts: false,
  healthStatus: 'down', dumpMessages: true, automaticConfigReload: false,
  graphite: { legacyNamespace: false, globalPrefix: "pre", prefixCounter: "", prefixTimer: "tmr",
              prefixGauge: "gau", prefixSet: "", globalSuffix: "host1", },
  repeater: [ { host: '10.0.0.1', port: 8125 } ],
  keyFlush: { interval: 1000 },
  backends: ["./backends/graphite", "./backends/console"],
}"#;
        let e = parse_etsy_config(text).unwrap();
        let c = &e.statsd;
        assert_eq!(e.listen[0].address(), "127.0.0.1:9125");
        assert_eq!(e.admin, "127.0.0.1:9126");
        assert_eq!(e.graphite.as_deref(), Some("127.0.0.1:12003"));
        assert_eq!(c.flush_interval, std::time::Duration::from_millis(2500));
        assert_eq!(c.percent_threshold, vec![90.0, 99.9, -10.0]);
        assert_eq!(c.histogram.len(), 2);
        assert_eq!(c.histogram[0].bins[4], Bin::Text("inf".into()));
        assert_eq!(c.calculated_timer_metrics, vec!["count", "upper_percent"]);
        assert_eq!(c.deletes(), (false, true, true, true));
        assert_eq!(c.gauges_max_ttl, 3);
        assert_eq!(c.prefix_stats, "ps");
        assert!(!c.key_name_sanitize && !c.flush_counts && !c.legacy_namespace && c.dump_messages);
        assert_eq!(c.health_status, HealthStatus::Down);
        assert_eq!(
            (
                c.global_prefix.as_str(),
                c.prefix_counter.as_str(),
                c.prefix_timer.as_str()
            ),
            ("pre", "", "tmr")
        );
        assert_eq!(c.global_suffix.as_deref(), Some("host1"));
        assert_eq!(
            e.unsupported,
            vec!["repeater", "keyFlush", "backends: ./backends/console"]
        );
        assert!(e.warning().unwrap().contains("repeater, keyFlush"));
    }

    #[test]
    fn servers_list_and_falsy_defaults() {
        let text = r#"{
  servers: [
    { server: "./servers/udp", address: "::1", address_ipv6: true, port: 8125 },
    { server: "./servers/tcp", address: "127.0.0.1", port: 8127 },
    { server: "./servers/tcp", socket: "/tmp/statsd.sock", socket_mod: 0o660 },
    { address_ipv6: true },
  ],
  percentThreshold: 0, flushInterval: 0, gaugesMaxTTL: 1.5,
}"#;
        let e = parse_etsy_config(text).unwrap();
        assert_eq!(e.listen[0].address(), "[::1]:8125");
        assert_eq!(e.listen[1].kind, ListenKind::Tcp);
        assert_eq!(e.listen[1].address(), "127.0.0.1:8127");
        assert_eq!(
            e.listen[2].socket.as_deref(),
            Some(std::path::Path::new("/tmp/statsd.sock"))
        );
        assert_eq!(e.listen[2].socket_mode, Some(0o660));
        assert_eq!(e.listen[3].address(), "[::]:8125");
        assert!(e.statsd.tcp);
        assert_eq!(e.statsd.percent_threshold, vec![90.0]);
        assert_eq!(e.statsd.flush_interval, std::time::Duration::from_secs(10));
        assert_eq!(e.statsd.gauges_max_ttl, 1);
    }

    #[test]
    fn errors_name_the_place() {
        let err =
            parse_etsy_config("{\n  port: 8125,\n  globalSuffix: require('os').hostname()\n}")
                .unwrap_err();
        match err {
            EtsyConfigError::Syntax { line, .. } => assert_eq!(line, 3),
            other => panic!("{other:?}"),
        }
        let err = parse_etsy_config("{ port: 'abc' }").unwrap_err();
        assert!(err.to_string().contains("port"), "{err}");
        assert!(parse_etsy_config("{ a: 1 ").is_err());
        assert!(parse_etsy_config("{ a: 'x } ").is_err());
    }
}
