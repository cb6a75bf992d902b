#!/usr/bin/env bash
# The same Carbon plaintext load against `charcoal carbon` (release build), a real carbon-cache
# 1.1.10 (Python, from PyPI) and VictoriaMetrics (Debian's victoria-metrics), one after the
# other in one run, side by side: points/s committed, server CPU seconds, peak RSS, ratios.
#
#   benches/carbon-vs-references.sh            # full load + quick load (defaults below)
#   LOADS=quick benches/carbon-vs-references.sh
#   SERVERS="charcoal victoria" METRICS=100000 POINTS=300 benches/carbon-vs-references.sh
#   PROTOCOL=pickle LOADS=quick benches/carbon-vs-references.sh   # pickle port, as carbon-relay
#
# Each run, per server, on a fresh data directory and free loopback ports:
#   1. warm-up (not measured): one point per metric, so every whisper file (every VictoriaMetrics
#      series) exists before the measured phase; waits until all M files/series exist and the
#      server has gone quiet.
#   2. measured phase: `charcoal bench carbon` sends P rounds x M metrics (`bench.b<m%100>.m<m>`,
#      value = round number, timestamps STEP seconds apart, all inside the 10 s archive) over
#      CONNECTIONS TCP connections. The clock runs from the first send until every point is
#      committed:
#        - whisper stores (charcoal, carbon-cache): once the server has rested (no 100 ms
#          sample with >= 20 ms CPU for QUIET seconds), every file is read (header with Python's
#          whisper.info, archive 0 unpacked with struct) and each of the M x P points must be
#          there with its value (re-checked a few times, else the run fails); the clock stops
#          at the newest file mtime, i.e. the server's last write.
#        - VictoriaMetrics: until a query sees all of them (sum(count_over_time(...)) ==
#          M x P, polled every 0.25 s once the sender is done; sum_over_time checks the
#          values), so its figure includes up to one poll interval and its flush delay.
#      CPU = utime+stime of the server process over the measured phase until it went quiet
#      (for VictoriaMetrics this includes background merges). Peak RSS = VmHWM (process
#      lifetime, warm-up included) and the largest RssAnon sampled (RSS without file pages:
#      whisper pages cached by the kernel are not the server's own memory).
#
# Loads (LOADS, default "full quick"):
#   full : METRICS (100000) x POINTS (300) = 30M points; carbon-cache gets CARBON_POINTS rounds
#          (default 30 = 3M points over the same 100k files) because at its speed (~0.1M
#          points/s) the 30M points would take many minutes (CARBON_POINTS=300 for the same load).
#   quick: QUICK_METRICS (10000) x QUICK_POINTS (300) = 3M points, the same for all three.
# PROTOCOL: text (default) or pickle: the same load as carbon-relay's pickle frames (500 points,
# protocol 2) to the pickle port of charcoal and carbon-cache (VictoriaMetrics has none, so
# SERVERS defaults to "charcoal carbon").
# Other env: SERVERS ("charcoal victoria carbon"), CONNECTIONS (4), STEP (10), RETENTION
# (10s:1h,1m:1d; POINTS x STEP must fit in the first archive), QUIET (3 s), TIMEOUT (1200 s per
# phase), WORK_DIR (default: a new directory under /tmp, removed at exit), CHARCOAL_BIN (skip
# the release build and use this binary), CHARCOAL_CARBON_VENV (/opt/charcoal-interop/carbon),
# NICE (0 = off; e.g. -20 as root): on a machine shared with other work, start each server and
# the sender in a session of its own and give its scheduler autogroup this nice value (with
# autogroups, plain `nice` only orders processes within one session), the same for all three.
# The report shows how much CPU everything else used while sending.
#
# Needs: python3, curl; carbon 1.1.10 in a venv (.ci/setup-carbon.sh) and Debian's
# victoria-metrics — both installed here when missing and running as root on Debian.
# Loopback only; every server is stopped by pid.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
LOADS=${LOADS:-full quick}
PROTOCOL=${PROTOCOL:-text}
case $PROTOCOL in
    text) SERVERS=${SERVERS:-charcoal victoria carbon} ;;
    pickle) SERVERS=${SERVERS:-charcoal carbon} ;;
    *) echo "PROTOCOL is text or pickle, not $PROTOCOL" >&2; exit 2 ;;
esac
case " $SERVERS " in
    *" victoria "*) [ "$PROTOCOL" = text ] || { echo "victoria-metrics has no pickle receiver" >&2; exit 2; } ;;
esac
METRICS=${METRICS:-100000}
POINTS=${POINTS:-300}
CARBON_POINTS=${CARBON_POINTS:-30}
QUICK_METRICS=${QUICK_METRICS:-10000}
QUICK_POINTS=${QUICK_POINTS:-300}
CONNECTIONS=${CONNECTIONS:-4}
STEP=${STEP:-10}
RETENTION=${RETENTION:-10s:1h,1m:1d}
QUIET=${QUIET:-3}
TIMEOUT=${TIMEOUT:-1200}
NICE=${NICE:-0}
CARBON_VENV=${CHARCOAL_CARBON_VENV:-/opt/charcoal-interop/carbon}

# --- installs (benchmark-only peers) -------------------------------------------------------
if [[ " $SERVERS " == *" carbon "* ]] && [ ! -f "$CARBON_VENV/bin/carbon-cache.py" ]; then
    bash "$ROOT/.ci/setup-carbon.sh"
fi
if [[ " $SERVERS " == *" victoria "* ]] && ! command -v victoria-metrics >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        # Keep the package's service (it listens on every address) from starting.
        policy_added=0
        if [ ! -e /usr/sbin/policy-rc.d ]; then
            printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
            chmod +x /usr/sbin/policy-rc.d
            policy_added=1
        fi
        apt-get install -y -qq --no-install-recommends victoria-metrics >/dev/null
        [ "$policy_added" = 0 ] || rm -f /usr/sbin/policy-rc.d
    else
        echo "victoria-metrics missing (apt-get install victoria-metrics)" >&2
        exit 1
    fi
fi
command -v curl >/dev/null || { echo "curl missing" >&2; exit 1; }

if [ -n "${CHARCOAL_BIN:-}" ]; then
    BIN=$CHARCOAL_BIN
else
    (cd "$ROOT" && cargo build --release -q -p charcoal)
    BIN="$ROOT/target/release/charcoal"
fi

if [ -n "${WORK_DIR:-}" ]; then
    WORK=$WORK_DIR
    mkdir -p "$WORK"
    KEEP=1
else
    WORK=$(mktemp -d /tmp/carbon-bench.XXXXXX)
    KEEP=0
fi
SERVER_PID=
SAMPLER_PID=
stop_server() {
    if [ -n "$SAMPLER_PID" ]; then kill "$SAMPLER_PID" 2>/dev/null || true; wait "$SAMPLER_PID" 2>/dev/null || true; fi
    if [ -n "$SERVER_PID" ]; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 600); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=
    SAMPLER_PID=
}
cleanup() {
    stop_server
    if [ "$KEEP" = 0 ]; then
        echo "removing $WORK (can take minutes with 100k files on a discard-mounted filesystem)" >&2
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

# --- helpers (Python: ports, /proc sampling, waiting, verification, report) -----------------
cat >"$WORK/h.py" <<'PY'
import json, os, socket, struct, sys, time, urllib.parse, urllib.request

TCK = os.sysconf("SC_CLK_TCK")

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p

def ticks(pid):
    with open("/proc/%s/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)

def status(pid):
    out = {}
    with open("/proc/%s/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmHWM", "VmRSS", "RssAnon"):
                out[k] = int(v.split()[0])
    return out

def sample(pid, out):
    """One line every 100 ms: time, CPU ticks, RssAnon kB, VmHWM kB, and the nanoseconds the
    process's threads have spent runnable but waiting for a CPU (schedstat run_delay, summed
    over every thread seen), i.e. how much other work on the machine held the server back."""
    delays = {}
    with open(out, "a", buffering=1) as f:
        while True:
            try:
                t = time.time()
                c = ticks(pid)
                s = status(pid)
                for tid in os.listdir("/proc/%s/task" % pid):
                    try:
                        with open("/proc/%s/task/%s/schedstat" % (pid, tid)) as st:
                            delays[tid] = int(st.read().split()[1])
                    except (FileNotFoundError, ProcessLookupError, IndexError):
                        pass
            except (FileNotFoundError, ProcessLookupError, ValueError):
                return
            f.write("%.3f %d %d %d %d\n" % (t, c, s.get("RssAnon", 0), s.get("VmHWM", 0),
                                           sum(delays.values())))
            time.sleep(0.1)

def read_samples(path, since):
    rows = []
    with open(path) as f:
        for line in f:
            p = line.split()
            if len(p) == 5 and float(p[0]) >= since - 0.2:
                rows.append((float(p[0]), int(p[1]), int(p[2]), int(p[3]), int(p[4])))
    return rows

def quiet(path, since, quiet_s, timeout):
    """Waits until the sampled process used < 20 ms CPU per 100 ms for quiet_s seconds;
    prints the end of its last busy sample and the ticks then."""
    deadline = time.time() + timeout
    busy_ticks = max(1, round(0.02 * TCK))
    while True:
        rows = read_samples(path, since)
        last_busy = since
        for a, b in zip(rows, rows[1:]):
            if b[1] - a[1] >= busy_ticks:
                last_busy = b[0]
        if rows and rows[-1][0] - last_busy >= quiet_s:
            print("%.3f %d %d" % (last_busy, rows[-1][1], max(r[2] for r in rows)))
            return
        if time.time() > deadline:
            sys.exit("timeout: still busy after %d s" % timeout)
        time.sleep(0.5)

def machine_busy():
    """CPU ticks the whole machine spent busy (all CPUs), from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal
    return v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] if len(v) > 7 else 0)

def prioritize(pid, nice):
    """Sets the nice value of the scheduler autogroup (session) of pid; 0 leaves it."""
    if nice != 0 and os.path.exists("/proc/%s/autogroup" % pid):
        with open("/proc/%s/autogroup" % pid, "w") as f:
            f.write(str(nice))

def run_sender(pid, nice, argv):
    """Runs the load generator (in its own session, prioritized like the server); prints its
    output line, then the start and end times, the server's and the machine's CPU ticks at
    both, and the sender's own CPU ticks."""
    import resource, subprocess
    m0, c0, t0 = machine_busy(), ticks(pid), time.time()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, start_new_session=True)
    prioritize(p.pid, nice)
    out = p.communicate()[0].strip()
    if p.returncode != 0:
        sys.exit("sender failed (%d)" % p.returncode)
    t1, c1, m1 = time.time(), ticks(pid), machine_busy()
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(out)
    print("%.3f %.3f %d %d %d %d %d" % (t0, t1, c0, c1, m0, m1, round((ru.ru_utime + ru.ru_stime) * TCK)))

def ticks_at(path, t):
    """CPU ticks in the first sample taken at or after t."""
    rows = read_samples(path, t)
    after = [r for r in rows if r[0] >= t]
    print((after or rows)[0][1])

def waited(path, t0, t1):
    """Seconds the server's threads waited for a CPU between t0 and t1 (nearest samples)."""
    rows = read_samples(path, t0)
    a = [r for r in rows if r[0] >= t0] or rows
    b = [r for r in rows if r[0] <= t1 + 0.1] or rows
    print("%.2f" % ((b[-1][4] - a[0][4]) / 1e9))

def whisper_files(root, prefix):
    base = os.path.join(root, *prefix.split("."))
    for d, _, files in os.walk(base):
        for name in files:
            if name.endswith(".wsp"):
                yield os.path.join(d, name)

def count_files(root, prefix):
    print(sum(1 for _ in whisper_files(root, prefix)))

def verify_whisper(root, prefix, metrics, first, points, step):
    """Reads archive 0 of every file: each metric must hold value r at first + r*step."""
    import whisper
    files = ok = wrong = 0
    last_write = 0.0
    seen = set()
    last = first + (points - 1) * step
    for path in whisper_files(root, prefix):
        rel = os.path.relpath(path, root)[:-4].replace(os.sep, ".")
        seen.add(rel)
        files += 1
        last_write = max(last_write, os.stat(path).st_mtime)
        info = whisper.info(path)
        a = info["archives"][0]
        with open(path, "rb") as f:
            f.seek(a["offset"])
            data = f.read(a["points"] * 12)
        got = {}
        for ts, v in struct.iter_unpack("!Ld", data):
            if first <= ts <= last and (ts - first) % step == 0:
                got[ts] = v
        for r in range(points):
            v = got.get(first + r * step)
            if v is None:
                continue
            if v == float(r):
                ok += 1
            else:
                wrong += 1
    expected = {"%s.b%d.m%d" % (prefix, m % 100, m) for m in range(metrics)}
    missing_files = len(expected - seen)
    print(json.dumps({"files": files, "missing_files": missing_files, "points_ok": ok,
                      "points_wrong": wrong, "points_expected": metrics * points,
                      "last_write": round(last_write, 3)}))

def vm_query(http, q, t):
    url = "http://%s/api/v1/query?%s" % (http, urllib.parse.urlencode({"query": q, "time": t, "nocache": 1}))
    with urllib.request.urlopen(url, timeout=120) as r:
        body = json.load(r)
    res = body["data"]["result"]
    return float(res[0]["value"][1]) if res else 0.0

def vm_series(http):
    with urllib.request.urlopen("http://%s/api/v1/series/count" % http, timeout=60) as r:
        return int(json.load(r)["data"][0])

def vm_wait_series(http, n, timeout):
    deadline = time.time() + timeout
    while vm_series(http) < n:
        if time.time() > deadline:
            sys.exit("timeout: VictoriaMetrics has %d series, expected %d" % (vm_series(http), n))
        time.sleep(0.5)

def vm_wait_points(http, prefix, metrics, first, points, step, timeout):
    """Polls until every point is visible; prints the time of the successful poll and checks
    the values (sum of rounds)."""
    sel = '{__name__=~"%s[.].*"}' % prefix
    last = first + (points - 1) * step
    window = "%ds" % (points * step)
    expected = metrics * points
    deadline = time.time() + timeout
    while True:
        t = time.time()
        n = vm_query(http, "sum(count_over_time(%s[%s]))" % (sel, window), last)
        if n >= expected:
            break
        if time.time() > deadline:
            sys.exit("timeout: VictoriaMetrics shows %d of %d points" % (n, expected))
        time.sleep(0.25)
    s = vm_query(http, "sum(sum_over_time(%s[%s]))" % (sel, window), last)
    want = metrics * points * (points - 1) / 2
    print("%.3f %d %s" % (t, n, "values-ok" if s == want else "values-WRONG(%s!=%s)" % (s, want)))

def report(rows_path):
    rows = [json.loads(l) for l in open(rows_path)]
    loads = []
    for r in rows:
        if r["load"] not in loads:
            loads.append(r["load"])
    print()
    print("%-6s %-9s %8s %6s %10s %8s %11s %11s %8s %8s %10s %10s %9s %7s" % (
        "load", "server", "metrics", "rounds", "points", "secs", "points/s", "sent/s",
        "cpu@done", "cpu@rest", "pts/cpu-s", "VmHWM MiB", "anon MiB", "waited"))
    for load in loads:
        for r in [r for r in rows if r["load"] == load]:
            print("%-6s %-9s %8d %6d %10d %8.2f %11.0f %11.0f %8.2f %8.2f %10.0f %10.1f %9.1f %7.2f" % (
                load, r["server"], r["metrics"], r["rounds"], r["points"], r["secs"],
                r["points"] / r["secs"], r["points"] / max(r["send_secs"], 1e-3), r["cpu_commit"], r["cpu"],
                r["points"] / max(r["cpu"], 1e-9), r["hwm_kb"] / 1024, r["anon_kb"] / 1024,
                r["waited"]))
    print("secs: first send until every point committed; sent/s: the sender's own rate; "
          "cpu@done / cpu@rest: server CPU seconds until committed / until it went quiet; "
          "pts/cpu-s uses cpu@rest; waited: seconds the server's threads were runnable but "
          "had no CPU until committed, summed over its threads (other work on the machine, "
          "or more runnable server threads than CPUs)")
    for r in rows:
        busy = r["others_cpu"] / max(r["send_secs"] * os.cpu_count(), 1e-9)
        if busy > 0.05 and r["others_cpu"] > 1:
            print("WARNING: %s/%s: other processes used %.0f%% of the machine while sending "
                  "(%.1f CPU-s): its figures are disturbed" % (r["load"], r["server"], 100 * busy, r["others_cpu"]))
    print()
    for load in loads:
        by = {r["server"]: r for r in rows if r["load"] == load}
        c = by.get("charcoal")
        if not c:
            continue
        for peer in ("carbon", "victoria"):
            p = by.get(peer)
            if not p:
                continue
            print("%s load, charcoal/%s: points/s %.1fx, points per CPU-second %.1fx, "
                  "VmHWM %.2fx, RssAnon %.2fx%s" % (
                load, peer, (c["points"] / c["secs"]) / (p["points"] / p["secs"]),
                (c["points"] / max(c["cpu"], 1e-9)) / (p["points"] / max(p["cpu"], 1e-9)),
                c["hwm_kb"] / p["hwm_kb"], c["anon_kb"] / max(p["anon_kb"], 1),
                "" if c["points"] == p["points"] else
                " (different point counts: %d vs %d)" % (c["points"], p["points"])))

if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "port": print(free_port())
    elif cmd == "ticks": print(ticks(args[0]))
    elif cmd == "hwm": print(status(args[0])["VmHWM"])
    elif cmd == "sample": sample(args[0], args[1])
    elif cmd == "quiet": quiet(args[0], float(args[1]), float(args[2]), float(args[3]))
    elif cmd == "busy": print(machine_busy())
    elif cmd == "send": run_sender(args[0], int(args[1]), args[2:])
    elif cmd == "prioritize": prioritize(args[0], int(args[1]))
    elif cmd == "ticks-at": ticks_at(args[0], float(args[1]))
    elif cmd == "waited": waited(args[0], float(args[1]), float(args[2]))
    elif cmd == "count-files": count_files(args[0], args[1])
    elif cmd == "verify-whisper": verify_whisper(args[0], args[1], *map(int, args[2:]))
    elif cmd == "vm-wait-series": vm_wait_series(args[0], int(args[1]), float(args[2]))
    elif cmd == "vm-wait-points": vm_wait_points(args[0], args[1], *map(int, args[2:6]), float(args[6]))
    elif cmd == "report": report(args[0])
    else: sys.exit("unknown helper " + cmd)
PY
H() { python3 "$WORK/h.py" "$@"; }
# Verification reads files with Python's whisper (the carbon venv has whisper 1.1.10).
WPY="$CARBON_VENV/bin/python"
[ -x "$WPY" ] || WPY=/opt/charcoal-interop/whisper/bin/python
[ -x "$WPY" ] || { echo "no Python with whisper: run .ci/setup-carbon.sh" >&2; exit 1; }
now() { date +%s.%N; }

# --- servers: start_<name> DIR sets SERVER_PID, CARBON_PORT (and VM_HTTP) --------------------
start_charcoal() {
    local dir=$1
    local field=tcp pickle=""
    if [ "$PROTOCOL" = pickle ]; then field=pickle; pickle=127.0.0.1:0; fi
    CHARCOAL_STORE__DEFAULT_RETENTION=$RETENTION CHARCOAL_CARBON__METRIC_INTERVAL=0s \
        CHARCOAL_CARBON__PICKLE_LISTEN=$pickle \
        setsid "$BIN" carbon --data-dir "$dir/data" --listen 127.0.0.1:0 --log-format json \
        >"$dir/server.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1 300); do
        CARBON_PORT=$(sed -nE '/"carbon receiver listening"/ s/.*"'"$field"'":"(Some\()?127\.0\.0\.1:([0-9]+)\)?".*/\2/p' "$dir/server.log" 2>/dev/null | head -1 || true)
        [ -n "$CARBON_PORT" ] && return 0
        sleep 0.1
    done
    echo "charcoal did not start:" >&2; cat "$dir/server.log" >&2; exit 1
}

start_carbon() {
    local dir=$1
    mkdir -p "$dir/conf" "$dir/storage/whisper" "$dir/storage/log" "$dir/storage/lists"
    local line_port pickle_port
    line_port=$(H port)
    pickle_port=$(H port)
    CARBON_PORT=$line_port
    [ "$PROTOCOL" = pickle ] && CARBON_PORT=$pickle_port
    cat >"$dir/conf/carbon.conf" <<EOF
[cache]
STORAGE_DIR = $dir/storage
LOCAL_DATA_DIR = $dir/storage/whisper
WHITELISTS_DIR = $dir/storage/lists
CONF_DIR = $dir/conf
LOG_DIR = $dir/storage/log
PID_DIR = $dir/storage
ENABLE_LOGROTATION = False
USER =
MAX_CACHE_SIZE = inf
MAX_UPDATES_PER_SECOND = inf
MAX_CREATES_PER_MINUTE = inf
LINE_RECEIVER_INTERFACE = 127.0.0.1
LINE_RECEIVER_PORT = $line_port
ENABLE_UDP_LISTENER = False
PICKLE_RECEIVER_INTERFACE = 127.0.0.1
PICKLE_RECEIVER_PORT = $pickle_port
CACHE_QUERY_INTERFACE = 127.0.0.1
CACHE_QUERY_PORT = $(H port)
USE_FLOW_CONTROL = True
CACHE_WRITE_STRATEGY = sorted
WHISPER_AUTOFLUSH = False
WHISPER_FALLOCATE_CREATE = True
ENABLE_TAGS = False
CARBON_METRIC_INTERVAL = 0
LOG_LISTENER_CONN_SUCCESS = False
EOF
    cat >"$dir/conf/storage-schemas.conf" <<EOF
[bench]
pattern = .*
retentions = $RETENTION
EOF
    cat >"$dir/conf/storage-aggregation.conf" <<EOF
[default]
pattern = .*
xFilesFactor = 0.5
aggregationMethod = average
EOF
    GRAPHITE_ROOT=$dir setsid "$CARBON_VENV/bin/python" "$CARBON_VENV/bin/carbon-cache.py" \
        --config="$dir/conf/carbon.conf" --nodaemon --logfile=- start >"$dir/server.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1 300); do
        if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $CARBON_PORT), 0.2).close()" 2>/dev/null; then
            return 0
        fi
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "carbon-cache did not start:" >&2; cat "$dir/server.log" >&2; exit 1
}

start_victoria() {
    local dir=$1
    CARBON_PORT=$(H port)
    VM_HTTP=127.0.0.1:$(H port)
    setsid victoria-metrics -storageDataPath="$dir/vm" -httpListenAddr="$VM_HTTP" \
        -graphiteListenAddr="127.0.0.1:$CARBON_PORT" -search.disableCache \
        -search.latencyOffset=0s -search.maxUniqueTimeseries=10000000 \
        >"$dir/server.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1 300); do
        if curl -fsS "http://$VM_HTTP/health" >/dev/null 2>&1 &&
            python3 -c "import socket; socket.create_connection(('127.0.0.1', $CARBON_PORT), 0.2).close()" 2>/dev/null; then
            return 0
        fi
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "victoria-metrics did not start:" >&2; cat "$dir/server.log" >&2; exit 1
}

send() { # send METRICS ROUNDS FIRST_TIMESTAMP -> sender output, then timing line (run_sender)
    local pickle=()
    [ "$PROTOCOL" = pickle ] && pickle=(--pickle)
    H send "$SERVER_PID" "$NICE" "$BIN" bench carbon --target "127.0.0.1:$CARBON_PORT" --connections "$CONNECTIONS" \
        --metrics "$1" --points "$2" --step "$STEP" --first-timestamp "$3" --duration "${TIMEOUT}s" \
        --prefix bench "${pickle[@]}"
}

# run LOAD SERVER METRICS ROUNDS: one measured run, appends a JSON row to $WORK/rows.
run() {
    local load=$1 server=$2 metrics=$3 rounds=$4
    local dir="$WORK/$load-$server"
    rm -rf "$dir"; mkdir -p "$dir"
    echo "== $load load, $server: $metrics metrics x $rounds rounds over $CONNECTIONS connections ($PROTOCOL protocol)"
    "start_$server" "$dir"
    # setsid must have become the server (it forks only for a process-group leader).
    [ "$(cat "/proc/$SERVER_PID/comm")" != setsid ] || { echo "setsid forked" >&2; exit 1; }
    H prioritize "$SERVER_PID" "$NICE"
    local samples="$dir/samples"
    H sample "$SERVER_PID" "$samples" &
    SAMPLER_PID=$!
    local data="$dir/data"
    [ "$server" = carbon ] && data="$dir/storage/whisper"

    # 1. warm-up: one point per metric, one round before the measured ones.
    local t_w; t_w=$(now)
    local first_w=$(( ( $(date +%s) / STEP * STEP ) - (rounds + 6) * STEP ))
    send "$metrics" 1 "$first_w" >"$dir/warmup.out"
    if [ "$server" = victoria ]; then
        H vm-wait-series "$VM_HTTP" "$metrics" "$TIMEOUT"
    else
        for _ in $(seq 1 "$TIMEOUT"); do
            [ "$(H count-files "$data" bench)" -ge "$metrics" ] && break
            sleep 1
        done
    fi
    H quiet "$samples" "$t_w" "$QUIET" "$TIMEOUT" >/dev/null
    echo "   warm-up done in $(python3 -c "print('%.1f' % ($(now) - $t_w))") s ($(H count-files "$data" bench 2>/dev/null || true) files)"

    # 2. measured phase. Timestamps: the last round 5 steps before now, all inside archive 0.
    local first=$(( ( $(date +%s) / STEP * STEP ) - (rounds + 5) * STEP ))
    local res; res=$(send "$metrics" "$rounds" "$first")
    local out; out=$(head -1 <<<"$res")
    local t0 t_sent c0 c_sent m0 m1 sender_ticks
    read -r t0 t_sent c0 c_sent m0 m1 sender_ticks <<<"$(tail -1 <<<"$res")"
    echo "   $out"
    local sent; sent=$(sed -E 's/^sent ([0-9]+) points.*/\1/' <<<"$out")
    if [ "$sent" != $(( metrics * rounds )) ]; then
        echo "sender stopped early: $out" >&2; exit 1
    fi
    local t_end c_commit c_end anon verdict
    if [ "$server" = victoria ]; then
        local vis; vis=$(H vm-wait-points "$VM_HTTP" bench "$metrics" "$first" "$rounds" "$STEP" "$TIMEOUT")
        read -r t_end _ verdict <<<"$vis"
        c_commit=$(H ticks-at "$samples" "$t_end")
        local q; q=$(H quiet "$samples" "$t0" "$QUIET" "$TIMEOUT")
        read -r _ c_end anon <<<"$q"
        echo "   all $sent points visible to queries ($verdict)"
        [ "$verdict" = values-ok ] || { echo "VictoriaMetrics returned wrong values" >&2; exit 1; }
    else
        # Wait until the server rests, then read every file; retry while points are missing
        # (a server may still hold some in memory). The last write is the newest file mtime.
        local check="" tries=0
        while :; do
            local q; q=$(H quiet "$samples" "$t0" "$QUIET" "$TIMEOUT")
            read -r _ c_end anon <<<"$q"
            check=$("$WPY" "$WORK/h.py" verify-whisper "$data" bench "$metrics" "$first" "$rounds" "$STEP")
            if python3 -c "import json,sys; c=json.loads(sys.argv[1]); sys.exit(0 if c['points_ok']==c['points_expected'] and c['points_wrong']==0 and c['missing_files']==0 else 1)" "$check"; then
                break
            fi
            tries=$((tries + 1))
            if [ "$tries" -ge 5 ]; then
                echo "   files read back: $check" >&2
                echo "not every point reached the files ($server)" >&2; exit 1
            fi
            echo "   incomplete, waiting: $check"
            sleep 5
        done
        echo "   files read back: $check"
        t_end=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['last_write'])" "$check")
        c_commit=$c_end
    fi
    local hwm; hwm=$(H hwm "$SERVER_PID")
    local waited; waited=$(H waited "$samples" "$t0" "$(python3 -c "print(max($t_end, $t_sent))")")
    stop_server
    python3 - "$load" "$server" "$metrics" "$rounds" "$t0" "$t_sent" "$t_end" "$c0" "$c_commit" "$c_end" "$hwm" "$anon" "$m0" "$m1" "$sender_ticks" "$c_sent" "$waited" >>"$WORK/rows" <<'PY'
import json, os, sys
load, server, metrics, rounds, t0, t_sent, t_end, c0, c1, c2, hwm, anon, m0, m1, snd, cs, waited = sys.argv[1:]
tck = os.sysconf("SC_CLK_TCK")
# CPU used by anything else on the machine while the sender ran (should be ~0).
others = (int(m1) - int(m0) - (int(cs) - int(c0)) - int(snd)) / tck
print("   while sending: server %.2f s CPU, sender %.2f s, everything else %.2f s (of %.2f s x %d CPUs); "
      "server threads waited %s s for a CPU until committed (summed over threads)"
      % ((int(cs) - int(c0)) / tck, int(snd) / tck, others, float(t_sent) - float(t0), os.cpu_count(), waited),
      file=sys.stderr)
print(json.dumps({"load": load, "server": server, "metrics": int(metrics), "rounds": int(rounds),
                  "points": int(metrics) * int(rounds), "secs": max(float(t_end), float(t_sent)) - float(t0),
                  "send_secs": float(t_sent) - float(t0), "cpu_commit": (int(c1) - int(c0)) / tck,
                  "cpu": (int(c2) - int(c0)) / tck, "hwm_kb": int(hwm), "anon_kb": int(anon),
                  "sender_cpu": int(snd) / tck, "others_cpu": others, "waited": float(waited)}))
PY
    tail -1 "$WORK/rows" | python3 -c "import json,sys; r=json.load(sys.stdin); print('   committed in %.2f s (sender done after %.2f s): %.0f points/s, cpu %.2f s' % (r['secs'], r['send_secs'], r['points']/r['secs'], r['cpu']))"
    # Data stays until exit: deleting 100k files between runs would take minutes on a
    # filesystem mounted with `discard` and disturb the next run.
}

echo "charcoal: $BIN; carbon-cache: $CARBON_VENV; victoria-metrics: $(command -v victoria-metrics || echo -)"
echo "retention $RETENTION, step $STEP s, $CONNECTIONS connections, $(nproc) CPUs"
for load in $LOADS; do
    for server in $SERVERS; do
        case $load in
            full) rounds=$POINTS; [ "$server" = carbon ] && rounds=$CARBON_POINTS; run full "$server" "$METRICS" "$rounds" ;;
            quick) run quick "$server" "$QUICK_METRICS" "$QUICK_POINTS" ;;
            *) echo "unknown load $load" >&2; exit 1 ;;
        esac
    done
done
H report "$WORK/rows"
