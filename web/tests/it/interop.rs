//! Differential suite against graphite-web 1.1.10 from PyPI (spec render-api.md; installed by
//! `.ci/setup-graphite-web.sh`). Both servers read the same whisper files, written by the
//! reference `whisper` library (tests/data/gw_fixture.py), and are queried with the same
//! `now`. Every target is compared series by series: names, tags, timestamps, and values with
//! a relative tolerance of 1e-9 (absolute 1e-9 near zero); nulls must match exactly. Events
//! (spec §17) are posted to both and compared through `/events/get_data` and `events()`.
//!
//! Runs only with CHARCOAL_INTEROP=1 and then fails if graphite-web is missing. The venv is
//! found at $CHARCOAL_GRAPHITE_WEB (default /opt/charcoal-interop/graphite-web).

use std::io::Write as _;
use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use charcoal_store::{StorageRules, Store, StoreConfig};
use charcoal_web::{AppState, Config, serve};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// The clock both servers are queried with: 2026-11-18 14:33:00 UTC (a Wednesday).
const NOW: i64 = 1_795_012_380;
const TOLERANCE: f64 = 1e-9;

fn enabled() -> bool {
    std::env::var("CHARCOAL_INTEROP").as_deref() == Ok("1")
}

fn venv() -> PathBuf {
    std::env::var_os("CHARCOAL_GRAPHITE_WEB").map_or_else(
        || PathBuf::from("/opt/charcoal-interop/graphite-web"),
        PathBuf::from,
    )
}

/// A graphite-web started with gunicorn on a free loopback port; killed (by pid) on drop.
pub struct GraphiteWeb {
    child: Child,
    pub base: String,
    pub dir: tempfile::TempDir,
}

impl Drop for GraphiteWeb {
    fn drop(&mut self) {
        // SIGTERM lets the gunicorn master stop its worker; SIGKILL would orphan the worker.
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The settings module a front end adds on top of the suite's own (`charcoal_gw_settings`,
/// written by .ci/setup-graphite-web.sh), kept in the instance's directory.
const FRONT_END_SETTINGS: &str = "charcoal_gw_front_end";

fn env_for(cmd: &mut Command, venv: &Path, storage: &Path, front_end: bool) {
    let (path, module) = if front_end {
        let paths = [storage.join("settings"), venv.join("settings")];
        let joined = std::env::join_paths(paths).expect("PYTHONPATH");
        (joined, FRONT_END_SETTINGS)
    } else {
        (
            venv.join("settings").into_os_string(),
            "charcoal_gw_settings",
        )
    };
    cmd.env("CHARCOAL_GW_STORAGE_DIR", storage)
        .env("PYTHONPATH", path)
        .env("GRAPHITE_SETTINGS_MODULE", module)
        .env("DJANGO_SETTINGS_MODULE", "graphite.settings")
        .env("GRAPHITE_NO_PREFIX", "1");
}

fn python_installed(venv: &Path) -> PathBuf {
    let python = venv.join("bin/python");
    assert!(
        python.exists() && venv.join("bin/gunicorn").exists(),
        "CHARCOAL_INTEROP=1 but graphite-web is not installed at {} (run .ci/setup-graphite-web.sh)",
        venv.display()
    );
    python
}

impl GraphiteWeb {
    /// A graphite-web front end with no data of its own (an empty WHISPER_DIR) that reads
    /// `cluster_servers` (graphite-web's `CLUSTER_SERVERS` entries, e.g.
    /// `"127.0.0.1:8080?format=msgpack"`). Only what the suite's settings override is set
    /// back: `STORAGE_FINDERS` with graphite-web's default `RemoteFinder` first; every other
    /// cluster setting (REMOTE_*, INTRACLUSTER_HTTPS, FIND/FETCH timeouts) keeps its default
    /// unless `extra_settings` (Python lines) changes it.
    pub fn start_front_end(cluster_servers: &[String], extra_settings: &str) -> GraphiteWeb {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("whisper")).expect("empty whisper dir");
        std::fs::create_dir_all(dir.path().join("settings")).expect("settings dir");
        let servers: Vec<String> = cluster_servers.iter().map(|s| format!("{s:?}")).collect();
        let module = format!(
            "from charcoal_gw_settings import *  # noqa\n\
             STORAGE_FINDERS = (\n\
             \x20   'graphite.finders.remote.RemoteFinder',\n\
             \x20   'graphite.finders.standard.StandardFinder',\n\
             )\n\
             CLUSTER_SERVERS = [{}]\n\
             {extra_settings}",
            servers.join(", ")
        );
        std::fs::write(
            dir.path().join(format!("settings/{FRONT_END_SETTINGS}.py")),
            module,
        )
        .expect("write front-end settings");
        Self::launch(dir, true)
    }

    /// Writes the fixture with `profile` and starts graphite-web over it.
    pub fn start(profile: &str) -> GraphiteWeb {
        let venv = venv();
        let python = python_installed(&venv);
        let dir = tempfile::tempdir().expect("tempdir");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/gw_fixture.py");
        let out = Command::new(&python)
            .arg(&script)
            .arg(dir.path())
            .arg(NOW.to_string())
            .arg(profile)
            .output()
            .expect("run fixture script");
        assert!(
            out.status.success(),
            "fixture script failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let tagged: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect();
        let gw = Self::launch(dir, false);
        if !tagged.is_empty() {
            let body: String = tagged
                .iter()
                .map(|t| format!("path={}&", super::util::enc(t)))
                .collect();
            plain_http::Client
                .post_form(&format!("{}/tags/tagMultiSeries", gw.base), &body)
                .expect("register tagged series");
        }
        gw
    }

    /// Migrates the Django database in `dir` and starts gunicorn over it on a free port.
    fn launch(dir: tempfile::TempDir, front_end: bool) -> GraphiteWeb {
        let venv = venv();
        python_installed(&venv);
        let mut migrate = Command::new(venv.join("bin/django-admin"));
        migrate.args(["migrate", "--run-syncdb", "-v0"]);
        env_for(&mut migrate, &venv, dir.path(), front_end);
        let m = migrate.output().expect("django-admin migrate");
        assert!(
            m.status.success(),
            "migrate failed: {}",
            String::from_utf8_lossy(&m.stderr)
        );
        let port = StdListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let log = std::fs::File::create(dir.path().join("gunicorn.log")).expect("log file");
        let mut cmd = Command::new(venv.join("bin/gunicorn"));
        cmd.args([
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--workers",
            "1",
            "--timeout",
            "300",
            "graphite.wsgi:application",
        ])
        .stdout(Stdio::null())
        .stderr(log);
        env_for(&mut cmd, &venv, dir.path(), front_end);
        let child = cmd.spawn().expect("start gunicorn");
        let gw = GraphiteWeb {
            child,
            base: format!("http://127.0.0.1:{port}"),
            dir,
        };
        let client = plain_http::Client;
        let deadline = Instant::now() + Duration::from_secs(90);
        let rt_ok = loop {
            if client
                .get(format!("{}/version", gw.base))
                .is_ok_and(|r| r == "1.1.10")
            {
                break true;
            }
            if Instant::now() > deadline {
                break false;
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        assert!(
            rt_ok,
            "graphite-web did not come up; see {}",
            gw.dir.path().join("gunicorn.log").display()
        );
        gw
    }

    pub fn whisper_dir(&self) -> PathBuf {
        self.dir.path().join("whisper")
    }
}

/// A tiny blocking HTTP/1.1 client over std, used while graphite-web starts (outside the runtime).
mod plain_http {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Duration;

    pub struct Client;

    fn request(url: &str, method: &str, body: &str) -> std::io::Result<String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| std::io::Error::other("http only"))?;
        let (host, path) = rest
            .split_once('/')
            .map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
        let mut s = TcpStream::connect(host)?;
        s.set_read_timeout(Some(Duration::from_secs(60)))?;
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        let (_, body) = out
            .split_once("\r\n\r\n")
            .ok_or_else(|| std::io::Error::other("no body"))?;
        Ok(body.trim().to_owned())
    }

    impl Client {
        pub fn get(&self, url: String) -> std::io::Result<String> {
            request(&url, "GET", "")
        }
        pub fn post_form(&self, url: &str, body: &str) -> std::io::Result<String> {
            request(url, "POST", body)
        }
    }
}

/// One request: target plus extra query parameters.
struct Case {
    target: &'static str,
    params: &'static str,
}

const fn c(target: &'static str) -> Case {
    Case {
        target,
        params: "from=-1h",
    }
}

const fn cp(target: &'static str, params: &'static str) -> Case {
    Case { target, params }
}

const CASES: &[Case] = &[
    // plain paths and globs, archives, time forms
    c("test.web1.cpu.user"),
    c("test.web*.cpu.user"),
    c("test.*.cpu.*"),
    c("test.web{1,3}.cpu.{user,idle}"),
    c("test.web[1-2].cpu.system"),
    c("test.db1.cpu.user"),
    c("test.sparse.m"),
    c("test.neg.value"),
    c("test.web1.net.bytes_in"),
    c("test.nothing.here"),
    cp("test.web1.cpu.user", "from=-6h"),
    cp("test.web1.cpu.user", "from=-1d"),
    cp("test.web1.cpu.user", "from=-3d"),
    cp("test.web1.cpu.user", "from=-7d"),
    cp("test.web*.cpu.idle", "from=-2d&until=-1d"),
    cp("test.db1.cpu.user", "from=-10min"),
    cp(
        "test.web1.cpu.user",
        "from=12:00_20261118&until=14:00_20261118",
    ),
    cp("test.web1.cpu.user", "from=midnight"),
    cp("test.web1.cpu.user", "from=noon_yesterday&until=noon"),
    cp("test.web1.cpu.user", "from=yesterday&until=today"),
    cp("test.web1.cpu.user", "from=-2h&until=-1h"),
    cp("test.web1.cpu.user", "from=1795005000&until=1795008000"),
    cp("test.web1.cpu.user", "from=20261117&until=20261118"),
    cp("test.web1.cpu.user", "from=now-90min&until=now-30min"),
    cp(
        "test.web1.cpu.user",
        "from=11:00am_20261118&until=1pm_20261118",
    ),
    cp("test.web1.cpu.user", "from=-1h&until=now&tz=Europe/Berlin"),
    // combine
    c("sumSeries(test.web*.cpu.user)"),
    c("sumSeries(test.web1.cpu.user, test.db1.cpu.user)"),
    c("sumSeries(test.*.cpu.user)"),
    c("sum(test.web*.cpu.*)"),
    c("averageSeries(test.web*.cpu.user)"),
    c("avg(test.web*.cpu.system)"),
    c("maxSeries(test.web*.cpu.idle)"),
    c("minSeries(test.web*.cpu.idle)"),
    c("diffSeries(test.web1.cpu.user, test.web2.cpu.user)"),
    c("diffSeries(test.web*.cpu.user)"),
    c("multiplySeries(test.web1.cpu.user, test.web2.cpu.user)"),
    c("multiplySeries(test.web1.cpu.user)"),
    c("stddevSeries(test.web*.cpu.user)"),
    c("rangeOfSeries(test.web*.cpu.user)"),
    c("countSeries(test.web*.cpu.user)"),
    c("countSeries(test.*.cpu.user)"),
    c("aggregate(test.web*.cpu.user, 'median')"),
    c("aggregate(test.web*.cpu.user, 'avg_zero')"),
    c("aggregate(test.web*.cpu.user, 'sum', 0.9)"),
    c("aggregate(test.web*.cpu.user, 'last')"),
    c("aggregate(test.web*.cpu.user, 'count')"),
    c("aggregate(test.web*.cpu.user, 'multiply')"),
    c("aggregate(test.web*.cpu.user, 'diff')"),
    c("aggregate(test.web*.cpu.user, 'stddev')"),
    c("aggregate(test.web*.cpu.user, 'range')"),
    c("aggregate(test.*.cpu.user, 'maxSeries')"),
    c("group(test.web1.cpu.user, test.web2.cpu.idle)"),
    c("groupByNode(test.web*.cpu.*, 1, 'sum')"),
    c("groupByNode(test.web*.cpu.*, 3)"),
    c("groupByNode(test.web*.cpu.*, 3, 'sumSeries')"),
    c("groupByNode(test.web*.cpu.*, -1, 'max')"),
    c("groupByNodes(test.web*.cpu.*, 'sum', 1, 3)"),
    c("groupByNodes(test.*.cpu.*, 'average', 3)"),
    c("sumSeriesWithWildcards(test.web*.cpu.*, 1)"),
    c("averageSeriesWithWildcards(test.web*.cpu.*, 1)"),
    c("multiplySeriesWithWildcards(test.web1.cpu.*, 3)"),
    c("aggregateWithWildcards(test.web*.cpu.*, 'max', 1)"),
    c("asPercent(test.web*.cpu.user)"),
    c("asPercent(test.web1.cpu.user, test.web2.cpu.user)"),
    c("asPercent(test.web*.cpu.user, 100)"),
    c("asPercent(test.web*.cpu.*, None, 1)"),
    c("asPercent(test.web*.cpu.user, test.web*.cpu.idle)"),
    c("pct(test.web1.cpu.user, sumSeries(test.web1.cpu.*))"),
    c("divideSeries(test.web1.cpu.user, test.web2.cpu.user)"),
    c("divideSeries(test.web*.cpu.user, test.web1.cpu.idle)"),
    c("divideSeries(test.web1.cpu.user, test.db1.cpu.user)"),
    c("divideSeries(test.web1.cpu.user, test.nothing)"),
    c("divideSeriesLists(test.web*.cpu.user, test.web*.cpu.idle)"),
    c("sumSeriesLists(test.web*.cpu.user, test.web*.cpu.system)"),
    c("diffSeriesLists(test.web*.cpu.user, test.web*.cpu.system)"),
    c("multiplySeriesLists(test.web*.cpu.user, test.web*.cpu.system)"),
    c("percentileOfSeries(test.web*.cpu.user, 50)"),
    c("percentileOfSeries(test.web*.cpu.user, 75, true)"),
    c("weightedAverage(test.web*.cpu.user, test.web*.cpu.idle, 1)"),
    c("applyByNode(test.web*.cpu.user, 1, 'sumSeries(%.cpu.*)')"),
    c("applyByNode(test.web*.cpu.user, 1, 'sumSeries(%.cpu.*)', '%.total')"),
    c("powSeries(test.web1.cpu.user, scale(test.web2.cpu.user, 0.1))"),
    c("reduceSeries(mapSeries(test.web*.cpu.*, 1), 'asPercent', 3, 'user', 'idle')"),
    c("reduce(map(test.web*.cpu.*, 1), 'divideSeries', 3, 'system', 'idle')"),
    c("reduceSeries(mapSeries(test.*.cpu.user, 1), 'sumSeries', 3, 'user')"),
    // One prefix for all: later series fill the matcher slots last (map's group order).
    c("reduceSeries(mapSeries(test.web*.cpu.*, 3), 'diffSeries', 1, 'web1', 'web2')"),
    c(
        "aliasByNode(reduceSeries(mapSeries(test.web*.cpu.*, 1), 'asPercent', 3, 'user', 'idle'), 1)",
    ),
    // transform
    c("scale(test.web*.cpu.user, 2.5)"),
    c("scale(test.web1.cpu.user, -1)"),
    c("offset(test.web1.cpu.user, 10)"),
    c("scaleToSeconds(test.web1.cpu.user, 1)"),
    c("scaleToSeconds(test.db1.cpu.user, 60)"),
    c("absolute(test.neg.value)"),
    c("derivative(test.web1.cpu.user)"),
    c("derivative(test.sparse.m)"),
    c("nonNegativeDerivative(test.web1.net.bytes_in)"),
    c("nonNegativeDerivative(test.web1.net.bytes_in, 1000000)"),
    c("nonNegativeDerivative(test.web1.net.bytes_in, None, 0)"),
    c("perSecond(test.web1.net.bytes_in)"),
    c("perSecond(test.web1.net.bytes_in, 1000000)"),
    c("integral(test.web1.cpu.user)"),
    c("integral(test.sparse.m)"),
    c("integralByInterval(test.web1.cpu.user, '10min')"),
    c("keepLastValue(test.sparse.m)"),
    c("keepLastValue(test.sparse.m, 2)"),
    c("keepLastValue(test.sparse.m, 4)"),
    c("transformNull(test.sparse.m)"),
    c("transformNull(test.sparse.m, -1)"),
    c("transformNull(test.sparse.m, 0, test.web1.cpu.user)"),
    c("interpolate(test.sparse.m)"),
    c("interpolate(test.sparse.m, 2)"),
    c("delay(test.web1.cpu.user, 3)"),
    c("delay(test.web1.cpu.user, -2)"),
    c("pow(test.web1.cpu.user, 2)"),
    c("squareRoot(test.web1.cpu.user)"),
    c("squareRoot(test.neg.value)"),
    c("invert(test.web1.cpu.user)"),
    c("log(test.web1.cpu.user)"),
    c("log(test.web1.cpu.user, 2)"),
    c("offsetToZero(test.web*.cpu.user)"),
    c("round(test.web1.cpu.user)"),
    c("round(test.web1.cpu.user, 1)"),
    c("minMax(test.web*.cpu.user)"),
    c("isNonNull(test.sparse.m)"),
    c("add(test.web1.cpu.user, 5)"),
    c("exp(scale(test.web1.cpu.user, 0.01))"),
    c("sigmoid(scale(test.web1.cpu.user, 0.1))"),
    c("logit(scale(test.web1.cpu.user, 0.01))"),
    c("changed(test.sparse.m)"),
    c("compressPeriodicGaps(test.sparse.m)"),
    cp("compressPeriodicGaps(test.sparse.m)", "from=-6h"),
    c("compressPeriodicGaps(test.web1.cpu.user)"),
    c("derivative(compressPeriodicGaps(test.sparse.m))"),
    c("summarize(test.web1.cpu.user, '10min')"),
    c("summarize(test.web1.cpu.user, '10min', 'avg')"),
    c("summarize(test.web1.cpu.user, '10min', 'max', true)"),
    cp("summarize(test.web*.cpu.user, '1h', 'sum')", "from=-6h"),
    c("summarize(test.db1.cpu.user, '1min', 'last')"),
    c("summarize(test.sparse.m, '5min', 'count')"),
    c("summarize(test.web1.cpu.user, '7min')"),
    c("smartSummarize(test.web1.cpu.user, '10min')"),
    c("smartSummarize(test.web1.cpu.user, '10min', 'avg', 'hours')"),
    c("hitcount(test.web1.cpu.user, '10min')"),
    c("hitcount(test.web1.cpu.user, '7min')"),
    c("hitcount(test.db1.cpu.user, '1min')"),
    c("hitcount(test.web1.cpu.user, '10min', true)"),
    c("timeShift(test.web1.cpu.user, '1h')"),
    c("timeShift(test.web1.cpu.user, '-1d')"),
    c("timeShift(test.web*.cpu.user, '30min')"),
    c("timeShift(test.web1.cpu.user, '+10min')"),
    c("timeShift(test.web1.cpu.user, '1h', false)"),
    c("timeStack(test.web1.cpu.user, '10min', 0, 3)"),
    c("timeSlice(test.web1.cpu.user, '1795010000', '1795011000')"),
    // calculate
    c("movingAverage(test.web1.cpu.user, 5)"),
    c("movingAverage(test.web1.cpu.user, '10min')"),
    c("movingAverage(test.sparse.m, 5, 0.5)"),
    c("movingAverage(test.db1.cpu.user, '1min')"),
    c("movingSum(test.web1.cpu.user, 3)"),
    c("movingMin(test.web1.cpu.user, '5min')"),
    c("movingMax(test.web1.cpu.user, 4)"),
    c("movingMedian(test.web1.cpu.user, 5)"),
    c("movingMedian(test.web1.cpu.user, 4)"),
    c("movingWindow(test.web1.cpu.user, 5, 'sum')"),
    c("movingWindow(test.web1.cpu.user, '5min', 'avg_zero')"),
    c("exponentialMovingAverage(test.web1.cpu.user, 5)"),
    c("exponentialMovingAverage(test.web1.cpu.user, '5min')"),
    c("nPercentile(test.web*.cpu.user, 90)"),
    c("nPercentile(test.sparse.m, 50)"),
    c("aggregateLine(test.web1.cpu.user)"),
    c("aggregateLine(test.web1.cpu.user, 'max')"),
    c("aggregateLine(test.web1.cpu.user, 'sum', true)"),
    c("holtWintersForecast(test.web1.cpu.user, '1d', '1h')"),
    c("holtWintersForecast(test.sparse.m, '1d')"),
    c("holtWintersForecast(test.web1.cpu.user)"),
    c("holtWintersConfidenceBands(test.web1.cpu.user, 3, '1d', '1h')"),
    c("holtWintersAberration(test.web1.cpu.user, 1, '1d', '1h')"),
    c("holtWintersConfidenceArea(test.web1.cpu.user, 3, '1d', '1h')"),
    c("linearRegression(test.web1.cpu.user)"),
    c("linearRegression(test.web*.cpu.idle, '1795005000', '1795008000')"),
    c("linearRegression(test.sparse.m)"),
    c("stdev(test.web1.cpu.user, 5)"),
    c("stdev(test.sparse.m, 5, 0.5)"),
    // filter series
    c("highestCurrent(test.web*.cpu.user, 2)"),
    c("highestMax(test.web*.cpu.*, 3)"),
    c("highestAverage(test.web*.cpu.*, 2)"),
    c("lowestCurrent(test.web*.cpu.*, 2)"),
    c("lowestAverage(test.web*.cpu.*, 2)"),
    c("highest(test.web*.cpu.*, 2, 'sum')"),
    c("lowest(test.web*.cpu.*, 3, 'max')"),
    c("currentAbove(test.web*.cpu.*, 20)"),
    c("currentBelow(test.web*.cpu.*, 20)"),
    c("averageAbove(test.web*.cpu.*, 19)"),
    c("averageBelow(test.web*.cpu.*, 19)"),
    c("maximumAbove(test.web*.cpu.*, 35)"),
    c("maximumBelow(test.web*.cpu.*, 35)"),
    c("minimumAbove(test.web*.cpu.*, 2)"),
    c("minimumBelow(test.web*.cpu.*, 2)"),
    c("filterSeries(test.web*.cpu.*, 'max', '>', 34)"),
    c("filterSeries(test.web*.cpu.*, 'last', '<=', 20)"),
    c("limit(test.web*.cpu.*, 3)"),
    c("removeEmptySeries(test.*.*.*)"),
    c("removeEmptySeries(test.sparse.m, 0.5)"),
    c("exclude(test.web*.cpu.*, 'idle')"),
    c("grep(test.web*.cpu.*, 'web[12]')"),
    c("mostDeviant(test.web*.cpu.*, 2)"),
    c("unique(test.web1.cpu.user, test.web*.cpu.user)"),
    c("fallbackSeries(test.nothing, test.web1.cpu.user)"),
    c("averageOutsidePercentile(test.web*.cpu.*, 30)"),
    c("averageOutsidePercentile(test.web*.cpu.*, 80)"),
    c("averageOutsidePercentile(group(test.web1.cpu.*, test.db*.cpu.user), 60)"),
    // removeBetweenPercentile only on gap-free series: graphite-web 1.1.10 fails on a None
    // (spec §12.5; Charcoal counts a null as outside the band).
    c(
        "removeBetweenPercentile(group(test.neg.value, scale(test.neg.value, 2), scale(test.neg.value, -1), offset(test.neg.value, 1), offset(test.neg.value, -1)), 20)",
    ),
    c("removeBetweenPercentile(transformNull(test.web*.cpu.user, 20), 49)"),
    c("removeBetweenPercentile(seriesByTag('name=disk.used'), 60)"),
    // filter data
    c("removeAboveValue(test.web1.cpu.user, 20)"),
    c("removeBelowValue(test.web1.cpu.user, 20)"),
    c("removeAbovePercentile(test.web1.cpu.user, 80)"),
    c("removeBelowPercentile(test.web1.cpu.user, 20)"),
    // sorting
    c("sortByName(test.*.cpu.*)"),
    c("sortByName(test.*.cpu.*, false, true)"),
    c("sortByTotal(test.web*.cpu.*)"),
    c("sortByMaxima(test.web*.cpu.*)"),
    c("sortByMinima(test.web*.cpu.*)"),
    c("sortBy(test.web*.cpu.*, 'last')"),
    c("sortBy(test.web*.cpu.*, 'median', true)"),
    // alias
    c("alias(test.web1.cpu.user, 'my alias')"),
    c("aliasByNode(test.web*.cpu.user, 1)"),
    c("aliasByNode(test.web*.cpu.*, 1, 3)"),
    c("aliasByNode(scale(test.web1.cpu.user, 2), -2)"),
    c("aliasByMetric(test.web*.cpu.user)"),
    c("aliasByMetric(sumSeries(test.web*.cpu.user))"),
    c(r"aliasSub(test.web*.cpu.user, 'web(\d)', 'host-\1')"),
    c(r#"aliasSub(test.web1.cpu.user, "(^.*$)", "\1 A")"#),
    c(r#"aliasSub(sumSeries(test.web*.cpu.user), "(^.*$)", "\1 B")"#),
    c("legendValue(test.web1.cpu.user, 'avg', 'max')"),
    c("legendValue(test.sparse.m, 'last', 'min', 'total')"),
    c("upper(test.web1.cpu.user)"),
    c("lower(upper(test.web1.cpu.user), 0, 5)"),
    c("substr(test.web1.cpu.user, 1, 3)"),
    c("aliasQuery(test.web*.cpu.user, 'user', 'idle', 'idle %d')"),
    c(
        r"aliasQuery(test.web*.cpu.user, 'test\.(\w+)\.cpu\.user', 'sumSeries(test.\1.cpu.*)', '%.2f total')",
    ),
    c("aliasQuery(test.web1.cpu.user, 'user', 'system', '%s')"),
    // special, consolidation
    cp(
        "consolidateBy(test.web1.cpu.user, 'max')",
        "from=-1h&maxDataPoints=10",
    ),
    cp(
        "consolidateBy(test.web1.cpu.user, 'sum')",
        "from=-1h&maxDataPoints=7",
    ),
    cp(
        "consolidateBy(test.web1.cpu.user, 'first')",
        "from=-1h&maxDataPoints=7",
    ),
    cp(
        "cumulative(test.web1.cpu.user)",
        "from=-1h&maxDataPoints=10",
    ),
    cp("test.web1.cpu.user", "from=-1h&maxDataPoints=10"),
    cp("test.web*.cpu.*", "from=-1d&maxDataPoints=100"),
    cp("test.web1.cpu.user", "from=-1d&maxDataPoints=1"),
    cp("sumSeries(test.*.cpu.user)", "from=-1h&maxDataPoints=13"),
    cp(
        "test.sparse.m",
        "from=-1h&maxDataPoints=10&xFilesFactor=0.5",
    ),
    cp("test.sparse.m", "from=-1h&noNullPoints=1"),
    cp(
        "setXFilesFactor(test.sparse.m, 0.3)",
        "from=-1h&maxDataPoints=6",
    ),
    c("constantLine(42)"),
    c("constantLine(1.5)"),
    c("threshold(10, 'limit', 'red')"),
    c("cactiStyle(test.web*.cpu.user)"),
    c("cactiStyle(test.web*.cpu.user, 'si', 'b')"),
    c("cactiStyle(scale(test.web1.net.bytes_in, 1000), 'binary')"),
    c("cactiStyle(group(test.sparse.m, test.db1.cpu.user), units='ms')"),
    c("cactiStyle(group(test.neg.value, removeAboveValue(test.sparse.m, -1)))"),
    cp("identity('x')", "from=-10min"),
    cp("time('t', 120)", "from=-10min"),
    cp("sin('s', 2)", "from=-10min"),
    // graph
    c("stacked(test.web*.cpu.user)"),
    c("stacked(test.web*.cpu.user, 'foo')"),
    c("dashed(test.web1.cpu.user)"),
    c("secondYAxis(test.web1.cpu.user)"),
    c("drawAsInfinite(test.web1.cpu.user)"),
    c("color(test.web1.cpu.user, 'red')"),
    c("lineWidth(test.web1.cpu.user, 3)"),
    c("alpha(test.web1.cpu.user, 0.5)"),
    c("areaBetween(test.web1.cpu.{user,idle})"),
    // tags
    c("seriesByTag('dc=east')"),
    c("seriesByTag('name=disk.used', 'host=~web')"),
    c("seriesByTag('name=disk.used', 'dc!=east')"),
    c("seriesByTag('name=~disk', 'host!=~db')"),
    c("groupByTags(seriesByTag('name=disk.used'), 'sum', 'dc')"),
    c("groupByTags(seriesByTag('name=~disk'), 'max', 'name', 'dc')"),
    c("aliasByTags(seriesByTag('name=disk.used'), 'host', 'dc')"),
    c("aliasByTags(seriesByTag('name=disk.used'), 1, 'host')"),
    c("sumSeries(seriesByTag('dc=east'))"),
    // pipes, templates, nesting
    c("test.web*.cpu.user | sumSeries() | alias('piped')"),
    c("template(test.$host.cpu.user, host='web1')"),
    c("template(sumSeries(test.$1.cpu.$2), 'web*', 'idle')"),
    c("aliasByNode(movingAverage(test.web*.cpu.user, 5), 1)"),
    c("sumSeries(perSecond(test.web1.net.bytes_in), scale(test.web2.cpu.user, 0.01))"),
    c("highestMax(movingAverage(test.web*.cpu.*, '5min'), 2)"),
    c("asPercent(sumSeries(test.web*.cpu.user), sumSeries(test.web*.cpu.*))"),
    c("keepLastValue(summarize(test.sparse.m, '3min', 'max'))"),
    c("scale(sumSeries(test.web[12].cpu.user, test.db*.cpu.user), 0.5)"),
    c("groupByNode(summarize(test.web*.cpu.user, '15min', 'avg'), 1, 'max')"),
];

/// Requests answered by both with an error (graphite-web: 400 or 500; Charcoal: 400).
const ERROR_CASES: &[&str] = &[
    "nosuchfunction(test.web1.cpu.user)",
    "divideSeries(test.web1.cpu.user, test.web*.cpu.user)",
    "movingAverage(test.web1.cpu.user)",
    "scale(test.web1.cpu.user, 'x')",
    "summarize(test.web1.cpu.user, '1x')",
    // graphite-web fails with a Python exception (500) where Charcoal answers 400: a prefix
    // without one of the matchers (db1 has no idle), a node past the end of the names.
    "reduceSeries(mapSeries(test.*.cpu.*, 1), 'asPercent', 3, 'user', 'idle')",
    "reduceSeries(mapSeries(test.web*.cpu.*, 1), 'sumSeries', 7, 'user')",
    "aliasQuery(test.web1.cpu.user, 'user', 'nothing', '%d')",
    "aliasQuery(test.web1.cpu.user, 'user', 'idle', 'no placeholder')",
];

fn values_equal(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (None, None) => a.is_null() && b.is_null(),
        (Some(x), Some(y)) => (x - y).abs() <= TOLERANCE * x.abs().max(y.abs()).max(1.0),
        _ => false,
    }
}

/// Differences between two /render JSON answers (empty when equal within tolerance).
fn compare_render(theirs: &Value, ours: &Value) -> Vec<String> {
    let (Some(t), Some(o)) = (theirs.as_array(), ours.as_array()) else {
        return vec![format!("not both arrays: {theirs} vs {ours}")];
    };
    let mut diffs = Vec::new();
    if t.len() != o.len() {
        let names = |l: &[Value]| {
            l.iter()
                .map(|s| s["target"].to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        return vec![format!(
            "{} series [{}] vs ours {} [{}]",
            t.len(),
            names(t),
            o.len(),
            names(o)
        )];
    }
    for (ts, os) in t.iter().zip(o) {
        if ts["target"] != os["target"] {
            diffs.push(format!("name {} vs ours {}", ts["target"], os["target"]));
        }
        if ts["tags"] != os["tags"] {
            diffs.push(format!(
                "tags of {}: {} vs ours {}",
                ts["target"], ts["tags"], os["tags"]
            ));
        }
        let (tp, op) = (ts["datapoints"].as_array(), os["datapoints"].as_array());
        let (Some(tp), Some(op)) = (tp, op) else {
            diffs.push("datapoints missing".to_owned());
            continue;
        };
        if tp.len() != op.len() {
            diffs.push(format!(
                "{}: {} points vs ours {}",
                ts["target"],
                tp.len(),
                op.len()
            ));
            continue;
        }
        for (i, (a, b)) in tp.iter().zip(op).enumerate() {
            if a[1] != b[1] || !values_equal(&a[0], &b[0]) {
                diffs.push(format!("{} point {i}: {a} vs ours {b}", ts["target"]));
                break;
            }
        }
    }
    diffs
}

/// Two JSON-ish answers (dygraph's `Infinity` included, jsonp unwrapped) equal up to number
/// tolerance and with identical text outside the numbers.
fn compare_text_json(theirs: &str, ours: &str) -> Option<String> {
    let unwrap = |t: &str| -> (bool, String) {
        match t.strip_prefix("cb(").and_then(|t| t.strip_suffix(')')) {
            Some(inner) => (true, inner.to_owned()),
            None => (false, t.to_owned()),
        }
    };
    let ((tj, tb), (oj, ob)) = (unwrap(theirs), unwrap(ours));
    if tj != oj {
        return Some(format!(
            "jsonp wrapping differs: {theirs:?} vs ours {ours:?}"
        ));
    }
    // The text with every number replaced, so layout and names must match byte for byte.
    let skeleton = |t: &str| regex_lite_numbers(t);
    if skeleton(&tb) != skeleton(&ob) {
        return Some(format!("text differs: {theirs:?} vs ours {ours:?}"));
    }
    let clean = |t: &str| {
        t.replace("-Infinity", "-1e9999")
            .replace("Infinity", "1e9999")
    };
    let (t, o) = (parse_json(&clean(&tb)), parse_json(&clean(&ob)));
    if !json_close(&t, &o) {
        return Some(format!("values differ: {theirs:?} vs ours {ours:?}"));
    }
    None
}

/// `text` with each JSON number (outside strings) replaced by `#`.
fn regex_lite_numbers(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_str = false;
    let mut escaped = false;
    let mut in_num = false;
    for c in text.chars() {
        if in_str {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_str = false,
                _ => {}
            }
            continue;
        }
        let numeric = c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E');
        if numeric {
            if !in_num {
                out.push('#');
                in_num = true;
            }
            continue;
        }
        in_num = false;
        if c == '"' {
            in_str = true;
        }
        out.push(c);
    }
    out
}

/// Structural JSON equality with numbers compared by [`values_equal`].
fn json_close(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_close(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((k1, v1), (k2, v2))| k1 == k2 && json_close(v1, v2))
        }
        (Value::Number(_), Value::Number(_)) => values_equal(a, b),
        _ => a == b,
    }
}

/// A msgpack answer decoded into a JSON value (nil → null); an error says what came instead.
async fn fetch_msgpack(client: &::reqwest::Client, url: &str) -> Result<Value, String> {
    let r = client.get(url).send().await.map_err(|e| e.to_string())?;
    let status = r.status().as_u16();
    let ctype = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let bytes = r.bytes().await.map_err(|e| e.to_string())?;
    if status != 200 || ctype != "application/x-msgpack" {
        return Err(format!(
            "{status} {ctype}: {}",
            String::from_utf8_lossy(&bytes)
                .chars()
                .take(200)
                .collect::<String>()
        ));
    }
    rmp_serde::from_slice(&bytes).map_err(|e| format!("undecodable msgpack: {e}"))
}

/// Two decoded `format=msgpack` series lists: same keys, strings and integers equal, values
/// within tolerance (nulls exactly).
fn compare_msgpack_series(theirs: &Value, ours: &Value) -> Option<String> {
    let (Some(t), Some(o)) = (theirs.as_array(), ours.as_array()) else {
        return Some(format!("not both lists: {theirs} vs {ours}"));
    };
    if t.len() != o.len() {
        return Some(format!("{} series vs ours {}", t.len(), o.len()));
    }
    for (ts, os) in t.iter().zip(o) {
        let keys = |v: &Value| v.as_object().map(|m| m.keys().cloned().collect::<Vec<_>>());
        if keys(ts) != keys(os) {
            return Some(format!("keys {:?} vs ours {:?}", keys(ts), keys(os)));
        }
        for k in ["name", "pathExpression", "consolidationFunc"] {
            if ts[k] != os[k] {
                return Some(format!("{k}: {} vs ours {}", ts[k], os[k]));
            }
        }
        for k in ["start", "end", "step", "valuesPerPoint", "xFilesFactor"] {
            if ts[k].as_f64() != os[k].as_f64() {
                return Some(format!(
                    "{k} of {}: {} vs ours {}",
                    ts["name"], ts[k], os[k]
                ));
            }
        }
        if !json_close(&ts["values"], &os["values"]) {
            return Some(format!(
                "values of {}: {} vs ours {}",
                ts["name"], ts["values"], os["values"]
            ));
        }
    }
    None
}

fn parse_json(text: &str) -> Value {
    // graphite-web writes ±Infinity as ±1e9999, which serde_json rejects.
    let cleaned = text
        .replace("-1e9999", "-1.7976931348623157e308")
        .replace("1e9999", "1.7976931348623157e308");
    serde_json::from_str(&cleaned).unwrap_or_else(|e| panic!("invalid JSON ({e}): {text}"))
}

async fn fetch(client: &::reqwest::Client, url: &str) -> (u16, String) {
    match client.get(url).send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            (status, r.text().await.unwrap_or_default())
        }
        Err(e) => (0, e.to_string()),
    }
}

/// graphite-web 1.1.10 and Charcoal's production read path (the store: index + write cache)
/// over the same whisper files; Charcoal's base URL last.
async fn graphite_web_and_charcoal() -> (GraphiteWeb, Store, charcoal_web::WebServer, String) {
    let gw = tokio::task::spawn_blocking(|| GraphiteWeb::start("interop"))
        .await
        .expect("start graphite-web");
    let store_config = StoreConfig {
        data_dir: gw.whisper_dir(),
        ..StoreConfig::default()
    };
    let store = Store::open(&store_config, StorageRules::default()).expect("open store");
    let state = AppState::new(Arc::new(store.clone()), Config::default()).expect("state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let ours = serve(listener, state, CancellationToken::new()).expect("serve");
    let base = format!("http://{}", ours.local_addr());
    (gw, store, ours, base)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn differential_against_graphite_web() {
    if !enabled() {
        return;
    }
    let (gw, store, ours, ours_base) = graphite_web_and_charcoal().await;
    let client = ::reqwest::Client::new();
    assert!(CASES.len() >= 150, "{} cases", CASES.len());

    let mut failures = Vec::new();
    let mut non_empty = 0;
    for case in CASES {
        let q = format!(
            "target={}&{}&now={NOW}&format=json",
            super::util::enc(case.target),
            case.params
        );
        let (ts, tb) = fetch(&client, &format!("{}/render?{q}", gw.base)).await;
        let (os, ob) = fetch(&client, &format!("{ours_base}/render?{q}")).await;
        if ts != 200 {
            failures.push(format!(
                "{} [{}]: graphite-web answered {ts}: {}",
                case.target,
                case.params,
                tb.chars().take(200).collect::<String>()
            ));
            continue;
        }
        if os != 200 {
            failures.push(format!(
                "{} [{}]: Charcoal answered {os}: {ob}",
                case.target, case.params
            ));
            continue;
        }
        let theirs = parse_json(&tb);
        if theirs.as_array().is_some_and(|a| !a.is_empty()) {
            non_empty += 1;
        }
        for d in compare_render(&theirs, &parse_json(&ob)) {
            failures.push(format!("{} [{}]: {d}", case.target, case.params));
        }
    }
    for target in ERROR_CASES {
        let q = format!(
            "target={}&from=-1h&now={NOW}&format=json",
            super::util::enc(target)
        );
        let (ts, _) = fetch(&client, &format!("{}/render?{q}", gw.base)).await;
        let (os, ob) = fetch(&client, &format!("{ours_base}/render?{q}")).await;
        if !(400..600).contains(&ts) || os != 400 {
            failures.push(format!(
                "error case {target}: graphite-web {ts}, Charcoal {os} {ob}"
            ));
        }
    }
    // Text formats compared byte for byte.
    for (target, format) in [
        ("test.sparse.m", "raw"),
        ("sumSeries(test.web*.cpu.user)", "raw"),
        ("test.web1.cpu.user", "csv"),
        ("test.sparse.m", "csv"),
    ] {
        let q = format!(
            "target={}&from=-30min&now={NOW}&format={format}",
            super::util::enc(target)
        );
        let (_, tb) = fetch(&client, &format!("{}/render?{q}", gw.base)).await;
        let (_, ob) = fetch(&client, &format!("{ours_base}/render?{q}")).await;
        if tb != ob {
            failures.push(format!("{format} of {target}: {tb:?} vs ours {ob:?}"));
        }
    }
    // dygraph and rickshaw: the same text shape, values compared numerically (graphite-web
    // writes integer results such as countSeries as Python ints, Charcoal as floats).
    let json_formats = [
        ("test.web1.cpu.user", "dygraph"),
        ("test.web*.cpu.user", "dygraph"),
        ("test.sparse.m", "dygraph"),
        ("sumSeries(test.web*.cpu.user)", "dygraph"),
        ("test.nothing.here", "dygraph"),
        ("test.web1.cpu.user", "rickshaw"),
        ("test.web*.cpu.*", "rickshaw"),
        ("test.sparse.m", "rickshaw"),
        ("scale(test.neg.value, 0.5)", "rickshaw"),
        ("test.nothing.here", "rickshaw"),
    ];
    for (target, format) in json_formats {
        for extra in ["", "&jsonp=cb"] {
            let q = format!(
                "target={}&from=-30min&now={NOW}&format={format}{extra}",
                super::util::enc(target)
            );
            let (_, tb) = fetch(&client, &format!("{}/render?{q}", gw.base)).await;
            let (_, ob) = fetch(&client, &format!("{ours_base}/render?{q}")).await;
            if let Some(d) = compare_text_json(&tb, &ob) {
                failures.push(format!("{format}{extra} of {target}: {d}"));
            }
        }
    }
    // msgpack: both answers decoded, then compared key by key.
    let msgpack_cases = [
        "test.web1.cpu.user",
        "test.web*.cpu.*",
        "test.sparse.m",
        "sumSeries(test.web*.cpu.user)",
        "consolidateBy(test.web1.cpu.user, 'max')",
        "seriesByTag('name=disk.used')",
        "test.nothing.here",
    ];
    for target in msgpack_cases {
        let q = format!(
            "target={}&from=-1h&now={NOW}&format=msgpack&local=1&noCache=1",
            super::util::enc(target)
        );
        let theirs = fetch_msgpack(&client, &format!("{}/render/?{q}", gw.base)).await;
        let ours = fetch_msgpack(&client, &format!("{ours_base}/render/?{q}")).await;
        match (theirs, ours) {
            (Ok(t), Ok(o)) => {
                if let Some(d) = compare_msgpack_series(&t, &o) {
                    failures.push(format!("msgpack of {target}: {d}"));
                }
            }
            (t, o) => failures.push(format!("msgpack of {target}: {t:?} vs ours {o:?}")),
        }
    }
    for query in [
        "test.*",
        "test.web1.cpu.*",
        "test.{web1,db1}.cpu.u*",
        "nothing.*",
    ] {
        let q = format!(
            "local=1&format=msgpack&query={}&from={}&until={NOW}",
            super::util::enc(query),
            NOW - 3600
        );
        let theirs = fetch_msgpack(&client, &format!("{}/metrics/find/?{q}", gw.base)).await;
        let ours = fetch_msgpack(&client, &format!("{ours_base}/metrics/find/?{q}")).await;
        // graphite-web adds `intervals` to leaves; Charcoal tracks none (http.rs). Nodes of
        // the same name (user of web1 and db1) come in graphite-web's shuffled store order
        // (storage.py `_list_nodes`), so lists are compared ordered by path.
        let strip = |v: Value| -> Value {
            let mut v = v;
            for n in v.as_array_mut().into_iter().flatten() {
                if let Some(m) = n.as_object_mut() {
                    m.remove("intervals");
                }
            }
            if let Some(list) = v.as_array_mut() {
                list.sort_by(|a, b| a["path"].as_str().cmp(&b["path"].as_str()));
            }
            v
        };
        match (theirs, ours) {
            (Ok(t), Ok(o)) if strip(t.clone()) == strip(o.clone()) => {}
            (t, o) => failures.push(format!("find msgpack {query}: {t:?} vs ours {o:?}")),
        }
    }
    // Finder, expand and tag endpoints compared as JSON values.
    let finder_queries = [
        "/metrics/find?query=*",
        "/metrics/find?query=test.*",
        "/metrics/find?query=test.web*",
        "/metrics/find?query=test.web1.cpu.*",
        "/metrics/find?query=test.{web1,db1}.cpu.*",
        "/metrics/find?query=test.web[12].cpu.u*",
        "/metrics/find?query=test.*.cpu",
        "/metrics/find?query=test.web*.cpu.*&wildcards=1",
        "/metrics/find?query=test.*.cpu.*&leavesOnly=1",
        "/metrics/find?query=test.web1.cpu.u&format=completer",
        "/metrics/find?query=test.w&format=completer",
        "/metrics/find?query=test.*&format=completer&wildcards=1",
        "/metrics/find?query=test.*.cpu.user&format=nodelist&position=1",
        "/metrics/find?query=nothing.*",
        "/metrics/expand?query=test.web*.cpu.u*&leavesOnly=1",
        "/metrics/expand?query=test.*&query=test.web1.*",
        "/metrics/expand?query=test.web1.*&query=test.db*.*&groupByExpr=1",
        "/tags/autoComplete/tags?expr=dc%3Deast",
        "/tags/autoComplete/tags?expr=name%3Ddisk.used&tagPrefix=h",
        "/tags/autoComplete/tags",
        "/tags/autoComplete/values?tag=host",
        "/tags/autoComplete/values?tag=host&expr=dc%3Deast",
        "/tags/autoComplete/values?tag=dc&valuePrefix=w",
        "/tags/findSeries?expr=dc%3Dwest",
        "/tags/findSeries?expr=name%3Ddisk.used&expr=host!%3D~web",
    ];
    for path in finder_queries {
        let (ts, tb) = fetch(&client, &format!("{}{path}", gw.base)).await;
        let (os, ob) = fetch(&client, &format!("{ours_base}{path}")).await;
        if ts != os || parse_json(&tb) != parse_json(&ob) {
            failures.push(format!("{path}: graphite-web {ts} {tb} vs ours {os} {ob}"));
        }
    }
    // index.json: graphite-web lists tagged files by their encoded path (a documented
    // difference), so only plain names are compared.
    let (_, tb) = fetch(&client, &format!("{}/metrics/index.json", gw.base)).await;
    let (_, ob) = fetch(&client, &format!("{ours_base}/metrics/index.json")).await;
    let plain = |v: Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x.as_str())
            .filter(|s| !s.contains(';') && !s.starts_with("_tagged"))
            .map(str::to_owned)
            .collect()
    };
    if plain(parse_json(&tb)) != plain(parse_json(&ob)) {
        failures.push(format!("index.json differs: {tb} vs {ob}"));
    }

    // Guard against a vacuous pass: nearly every case must return data.
    assert!(
        non_empty + 3 >= CASES.len(),
        "only {non_empty} of {} cases returned series",
        CASES.len()
    );
    ours.shutdown().await.expect("shutdown");
    store.close();
    drop(gw);
    let mut report = std::io::stderr();
    for f in &failures {
        let _ = writeln!(report, "MISMATCH {f}");
    }
    assert!(
        failures.is_empty(),
        "{} of {} comparisons differ (see MISMATCH lines)",
        failures.len(),
        CASES.len()
            + ERROR_CASES.len()
            + finder_queries.len()
            + 5
            + 2 * json_formats.len()
            + msgpack_cases.len()
            + 4
    );
}

/// Parses an `/events/get_data` answer, unwrapping a jsonp call.
fn events_json(text: &str) -> Value {
    let inner = text
        .strip_prefix("cb(")
        .and_then(|t| t.strip_suffix(')'))
        .unwrap_or(text);
    parse_json(inner)
}

/// Differences between two `/events/get_data` answers: everything equal except `when`,
/// which may differ by 2 s for events posted without one (each server's own "now").
fn compare_events(theirs: &Value, ours: &Value) -> Option<String> {
    let (Some(t), Some(o)) = (theirs.as_array(), ours.as_array()) else {
        return Some(format!("not both arrays: {theirs} vs {ours}"));
    };
    let same = t.len() == o.len()
        && t.iter().zip(o).all(|(a, b)| {
            let keys = |v: &Value| v.as_object().map(|m| m.keys().cloned().collect::<Vec<_>>());
            let when = |v: &Value| v["when"].as_i64().unwrap_or(i64::MIN);
            keys(a) == keys(b)
                && ["what", "data", "tags", "id"].iter().all(|k| a[k] == b[k])
                && (when(a) - when(b)).abs() <= 2
        });
    (!same).then(|| format!("{theirs} vs ours {ours}"))
}

/// Graphite events (spec §17): the same events posted to both servers (graphite-web keeps
/// them in its Django database, migrated by the harness), then the same `/events/get_data`
/// queries and `events()` targets. Both use the real clock (graphite-web's events ignore
/// `now`), so events sit at least minutes away from every relative boundary. Left out on
/// purpose (documented differences, `web/src/events.rs`): tags naming no existing tag in the
/// default filter, commas in tags, and an event exactly at a render window's end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_against_graphite_web() {
    if !enabled() {
        return;
    }
    let gw = tokio::task::spawn_blocking(|| GraphiteWeb::start("interop"))
        .await
        .expect("start graphite-web");
    let events_dir = tempfile::tempdir().expect("tempdir");
    let config = Config {
        events_file: Some(events_dir.path().join("events.jsonl")),
        ..Config::default()
    };
    let state = AppState::new(Arc::new(charcoal_web::MemorySource::new()), config).expect("state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let ours = serve(listener, state, CancellationToken::new()).expect("serve");
    let ours_base = format!("http://{}", ours.local_addr());
    let client = ::reqwest::Client::new();
    let now = jiff::Timestamp::now().as_second();

    let posts = [
        format!(
            r#"{{"what": "old deploy", "tags": ["deploy", "web"], "data": "v0", "when": {}.75}}"#,
            now - 2 * 86400 - 3000
        ),
        format!(
            r#"{{"what": "db deploy", "tags": "db deploy", "data": "schema 7", "when": {}}}"#,
            now - 5400
        ),
        format!(
            r#"{{"what": "web deploy", "tags": ["deploy", "web"], "data": "v1", "when": {}.5}}"#,
            now - 2700
        ),
        format!(
            r#"{{"what": "incident", "tags": "ops web", "when": {}}}"#,
            now - 900
        ),
        format!(
            r#"{{"what": "unicode é ✓", "tags": ["ops"], "data": "line1\nline2", "when": {}}}"#,
            now - 800
        ),
        r#"{"what": "no when", "tags": "ops"}"#.to_owned(),
        format!(r#"{{"what": "untagged", "when": {}}}"#, now - 700),
    ];
    let mut failures = Vec::new();
    for (i, body) in posts.iter().enumerate() {
        // Alternate the two spellings of the endpoint.
        let path = if i % 2 == 0 { "/events/" } else { "/events" };
        for base in [&gw.base, &ours_base] {
            let r = client
                .post(format!("{base}{path}"))
                .body(body.clone())
                .send()
                .await
                .expect("post event");
            if r.status() != 200 {
                failures.push(format!("POST {body} to {base}: {}", r.status()));
            }
        }
    }
    // The error both answer alike (graphite-web's JSON and status).
    for body in [
        r#"{"what": "x", "tags": 5}"#,
        r#"{"what": "x", "tags": {"a": 1}}"#,
    ] {
        let mut answers = Vec::new();
        for base in [&gw.base, &ours_base] {
            let r = client
                .post(format!("{base}/events/"))
                .body(body)
                .send()
                .await
                .expect("post event");
            let status = r.status().as_u16();
            answers.push((status, parse_json(&r.text().await.unwrap_or_default())));
        }
        if answers[0] != answers[1] {
            failures.push(format!(
                "POST {body}: {:?} vs ours {:?}",
                answers[0], answers[1]
            ));
        }
    }

    let minute = |t: i64, format: &str| {
        jiff::Timestamp::from_second(t - t.rem_euclid(60))
            .expect("timestamp")
            .to_zoned(jiff::tz::TimeZone::UTC)
            .strftime(format)
            .to_string()
    };
    let queries = vec![
        String::new(),
        "tags=deploy".into(),
        "tags=deploy%20web".into(),
        "tags=web%20deploy&set=intersection".into(),
        "tags=db%20deploy".into(),
        "tags=db%20web".into(),
        "tags=db%20ops&set=union".into(),
        "tags=deploy&set=bogus".into(),
        "tags=nosuch".into(),
        "tags=nosuch&set=union".into(),
        "tags=".into(),
        "tags=ops&jsonp=cb".into(),
        "from=-1h".into(),
        "from=-1h&tags=web".into(),
        "from=-50min&until=-20min".into(),
        "from=now-2h&until=now".into(),
        "from=-3d&until=-1d".into(),
        "from=-7d&until=-2d".into(),
        format!("from={}&until={}", now - 6000, now - 850),
        format!("from={}&until={}", now - 900, now - 900),
        format!(
            "from={}&until={}",
            minute(now - 3000, "%H:%M_%Y%m%d"),
            minute(now - 600, "%H:%M_%Y%m%d")
        ),
        format!("from={}", minute(now, "%Y%m%d")),
        "from=midnight".into(),
        "from=yesterday&until=today".into(),
        "from=now&until=-2h".into(),
        "from=-2h&jsonp=cb".into(),
    ];
    let mut non_empty = 0;
    for q in &queries {
        let path = format!("/events/get_data?{q}");
        let (ts, tb) = fetch(&client, &format!("{}{path}", gw.base)).await;
        let (os, ob) = fetch(&client, &format!("{ours_base}{path}")).await;
        if ts != 200 || os != 200 {
            failures.push(format!("{path}: graphite-web {ts} {tb} vs ours {os} {ob}"));
            continue;
        }
        if q.contains("jsonp=cb") && !(tb.starts_with("cb(") && ob.starts_with("cb(")) {
            failures.push(format!("{path}: jsonp {tb} vs ours {ob}"));
        }
        let theirs = events_json(&tb);
        if theirs.as_array().is_some_and(|a| !a.is_empty()) {
            non_empty += 1;
        }
        if let Some(d) = compare_events(&theirs, &events_json(&ob)) {
            failures.push(format!("{path}: {d}"));
        }
    }
    // The events() function over windows ending on whole seconds where no event sits.
    let window = format!("from={}&until={}", now - 6000, now - 60);
    let targets = [
        ("events('deploy')", window.clone()),
        ("events('deploy', 'web')", window.clone()),
        ("events('ops', 'web')", window.clone()),
        ("events('*')", window.clone()),
        ("events('nosuch')", window.clone()),
        ("events('*')", format!("{window}&maxDataPoints=100")),
        ("events('web')", format!("{window}&maxDataPoints=7")),
        ("drawAsInfinite(events('deploy'))", window.clone()),
        (
            "events('deploy')",
            format!("from={}&until={}", now - 3 * 86400, now - 86400),
        ),
    ];
    for (target, params) in &targets {
        let q = format!("target={}&{params}&format=json", super::util::enc(target));
        let (ts, tb) = fetch(&client, &format!("{}/render?{q}", gw.base)).await;
        let (os, ob) = fetch(&client, &format!("{ours_base}/render?{q}")).await;
        if ts != 200 || os != 200 {
            failures.push(format!(
                "{target} [{params}]: graphite-web {ts} {} vs ours {os} {ob}",
                tb.chars().take(200).collect::<String>()
            ));
            continue;
        }
        for d in compare_render(&parse_json(&tb), &parse_json(&ob)) {
            failures.push(format!("{target} [{params}]: {d}"));
        }
    }
    assert!(
        non_empty + 6 >= queries.len(),
        "only {non_empty} of {} queries found events",
        queries.len()
    );
    ours.shutdown().await.expect("shutdown");
    drop(gw);
    let mut report = std::io::stderr();
    for f in &failures {
        let _ = writeln!(report, "MISMATCH {f}");
    }
    assert!(
        failures.is_empty(),
        "{} event comparisons differ (see MISMATCH lines)",
        failures.len()
    );
}

/// Render targets compared through a graphite-web front end.
const FRONT_END_CASES: &[Case] = &[
    c("test.web1.cpu.user"),
    c("test.web*.cpu.user"),
    c("test.*.cpu.*"),
    c("test.web{1,3}.cpu.{user,idle}"),
    c("test.sparse.m"),
    c("test.neg.value"),
    c("test.nothing.here"),
    cp("test.web1.cpu.user", "from=-3d"),
    cp("test.web*.cpu.idle", "from=-2d&until=-1d"),
    c("sumSeries(test.web*.cpu.user)"),
    c("aliasByNode(test.web*.cpu.*, 1, 3)"),
    c("movingAverage(test.web1.cpu.user, 5)"),
    c("asPercent(test.web*.cpu.user, test.web*.cpu.idle)"),
    c("summarize(test.web1.cpu.user, '10min', 'max')"),
    c("seriesByTag('name=disk.used')"),
    c("seriesByTag('dc=east')"),
    cp("test.web*.cpu.*", "from=-1d&maxDataPoints=100"),
];

/// Finder, expand and tag queries compared through a graphite-web front end: as graphite-web
/// answers them over its own files, format=json without `intervals` (the front end reports
/// `[]` for remote leaves whose peer sent none, graphite-web the file's span).
const FRONT_END_QUERIES: &[&str] = &[
    "/metrics/find?query=*",
    "/metrics/find?query=test.*",
    "/metrics/find?query=test.web1.cpu.*",
    "/metrics/find?query=test.{web1,db1}.cpu.*",
    "/metrics/find?query=test.*.cpu",
    "/metrics/find?query=test.web*.cpu.*&wildcards=1",
    "/metrics/find?query=test.*.cpu.*&leavesOnly=1",
    "/metrics/find?query=test.w&format=completer",
    "/metrics/find?query=test.*.cpu.user&format=nodelist&position=1",
    "/metrics/find?query=test.web*.cpu.*&format=json",
    "/metrics/find?query=nothing.*",
    "/metrics/expand?query=test.web*.cpu.u*&leavesOnly=1",
    "/tags/autoComplete/tags?expr=dc%3Deast",
    "/tags/autoComplete/values?tag=host",
];

/// Compares one front end's answers with graphite-web's and Charcoal's own; returns the
/// differences and how many render cases returned series.
async fn compare_front_end(
    client: &::reqwest::Client,
    front: &str,
    gw: &str,
    ours: &str,
) -> (Vec<String>, usize) {
    let mut failures = Vec::new();
    let mut non_empty = 0;
    for case in FRONT_END_CASES {
        let q = format!(
            "target={}&{}&now={NOW}&format=json",
            super::util::enc(case.target),
            case.params
        );
        let (fs, fb) = fetch(client, &format!("{front}/render?{q}")).await;
        let (ts, tb) = fetch(client, &format!("{gw}/render?{q}")).await;
        let (os, ob) = fetch(client, &format!("{ours}/render?{q}")).await;
        if fs != 200 || ts != 200 || os != 200 {
            failures.push(format!(
                "{} [{}]: front end {fs} {}, graphite-web {ts}, Charcoal {os}",
                case.target,
                case.params,
                fb.chars().take(300).collect::<String>()
            ));
            continue;
        }
        let front_json = parse_json(&fb);
        if front_json.as_array().is_some_and(|a| !a.is_empty()) {
            non_empty += 1;
        }
        for (who, other) in [("graphite-web", &tb), ("Charcoal", &ob)] {
            for d in compare_render(&parse_json(other), &front_json) {
                failures.push(format!(
                    "{} [{}]: {who} vs front end: {d}",
                    case.target, case.params
                ));
            }
        }
    }
    let strip_intervals = |mut v: Value| -> Value {
        for n in v.as_array_mut().into_iter().flatten() {
            if let Some(m) = n.as_object_mut() {
                m.remove("intervals");
            }
        }
        v
    };
    for path in FRONT_END_QUERIES {
        let (fs, fb) = fetch(client, &format!("{front}{path}")).await;
        let (ts, tb) = fetch(client, &format!("{gw}{path}")).await;
        if fs != ts || strip_intervals(parse_json(&fb)) != strip_intervals(parse_json(&tb)) {
            failures.push(format!(
                "{path}: graphite-web {ts} {tb} vs front end {fs} {fb}"
            ));
        }
    }
    let (_, fb) = fetch(client, &format!("{front}/metrics/index.json")).await;
    let (_, ob) = fetch(client, &format!("{ours}/metrics/index.json")).await;
    if parse_json(&fb) != parse_json(&ob) {
        failures.push(format!("index.json: Charcoal {ob} vs front end {fb}"));
    }
    (failures, non_empty)
}

/// graphite-web 1.1.10 as a front end over a Charcoal back end: a second graphite-web with no
/// data of its own lists Charcoal in `CLUSTER_SERVERS` as `"127.0.0.1:<port>?format=msgpack"`
/// (Charcoal refuses pickle, graphite-web's default cluster format), so every find and fetch
/// it serves goes through its `RemoteFinder`/`RemoteReader` to Charcoal's msgpack answers.
/// What it answers must equal what the first graphite-web answers over the same files and what
/// Charcoal answers directly. Run twice: with graphite-web's default GET requests and with
/// `REMOTE_STORE_USE_POST = True` (the same fields as a form body).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphite_web_front_end_reads_charcoal() {
    if !enabled() {
        return;
    }
    let (gw, store, ours, ours_base) = graphite_web_and_charcoal().await;
    let client = ::reqwest::Client::new();
    let mut failures = Vec::new();
    let mut logs = String::new();
    for (method, extra) in [("GET", ""), ("POST", "REMOTE_STORE_USE_POST = True\n")] {
        let peer = format!("{}?format=msgpack", ours.local_addr());
        let front =
            tokio::task::spawn_blocking(move || GraphiteWeb::start_front_end(&[peer], extra))
                .await
                .expect("start graphite-web front end");
        let (found, non_empty) =
            compare_front_end(&client, &front.base, &gw.base, &ours_base).await;
        let log_path = front.dir.path().join("gunicorn.log");
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        // Guard against a vacuous pass: the front end has no data but what Charcoal sends.
        assert!(
            non_empty + 1 >= FRONT_END_CASES.len(),
            "{method}: only {non_empty} of {} cases returned series through the front end; log:\n{log}",
            FRONT_END_CASES.len(),
        );
        if !found.is_empty() {
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            logs.push_str(&format!("--- {method} front-end log tail:\n"));
            for l in tail.into_iter().rev() {
                logs.push_str(l);
                logs.push('\n');
            }
        }
        failures.extend(found.into_iter().map(|d| format!("{method}: {d}")));
        drop(front);
    }
    ours.shutdown().await.expect("shutdown");
    store.close();
    drop(gw);
    let mut report = std::io::stderr();
    for f in &failures {
        let _ = writeln!(report, "MISMATCH {f}");
    }
    assert!(
        failures.is_empty(),
        "{} front-end comparisons differ (see MISMATCH lines)\n{logs}",
        failures.len(),
    );
}
