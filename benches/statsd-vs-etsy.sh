#!/usr/bin/env bash
# Same StatsD load through Etsy StatsD 0.9.0, through Charcoal's StatsD server, and into a
# bare recvmmsg loop that parses nothing (statsd/examples/recvmmsg_baseline.rs), side by
# side in one run: lines sent, lines flushed/received (loss), lines/s, server CPU seconds,
# lines per CPU-second, peak RSS, the Charcoal/Etsy ratios, and Charcoal's rate as a
# percentage of the bare loop's.
#
# Rates are lines delivered (flushed to the Carbon stand-in, or counted by the bare loop)
# divided by the sender's run time. With an unlimited RATE the sender goes as fast as one
# process can, which is the highest send rate this machine sustains from one sender; the
# loss printed then is the loss at that rate.
#
#   benches/statsd-vs-etsy.sh                  # saturate: sender as fast as it can, 10 s
#   RATE=300000 DURATION=10s benches/statsd-vs-etsy.sh
#
# Env: DURATION (10s), RATE (lines/s, 0 = unlimited), LPD (lines per datagram, 20),
# NAMES (distinct counters, 1000), ETSY_RCVBUF (bytes; Etsy's socket buffer is raised to it
# through a preload, the fair setting; 0 = leave Etsy's stock buffer), ROUNDS (3: Charcoal
# and the bare loops run that many times, interleaved, and the summary takes medians; Etsy
# runs once), CHARCOAL_STATSD_NODE_DIR.
# Needs .ci/setup-statsd.sh (Etsy StatsD from npm) and python3. Loopback only.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
NODE_DIR=${CHARCOAL_STATSD_NODE_DIR:-/opt/charcoal-interop/node}
DURATION=${DURATION:-10s}
RATE=${RATE:-0}
LPD=${LPD:-20}
NAMES=${NAMES:-1000}
ETSY_RCVBUF=${ETSY_RCVBUF:-33554432}
ROUNDS=${ROUNDS:-3}
FLUSH_MS=2000

[ -f "$NODE_DIR/node_modules/statsd/stats.js" ] || { echo "Etsy StatsD missing: run .ci/setup-statsd.sh" >&2; exit 1; }
(cd "$ROOT" && cargo build --release -q -p charcoal-statsd --example statsd_server --example bench_statsd --example recvmmsg_baseline)
BIN="$ROOT/target/release/examples"
WORK=$(mktemp -d)
PIDS=()
OLD_RMEM=$(cat /proc/sys/net/core/rmem_max)
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    if [ -w /proc/sys/net/core/rmem_max ]; then echo "$OLD_RMEM" > /proc/sys/net/core/rmem_max || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Carbon stand-in: sums the flushed counts of the generated counters.
cat > "$WORK/capture.py" <<'PY'
import socket, sys, threading
port, out = int(sys.argv[1]), sys.argv[2]
total = 0.0
lock = threading.Lock()
def handle(c):
    global total
    buf = b""
    while True:
        d = c.recv(1 << 20)
        if not d:
            break
        buf += d
        *lines, buf = buf.split(b"\n")
        s = 0.0
        for l in lines:
            if l.startswith(b"stats_counts.bench."):
                s += float(l.split(b" ")[1])
        with lock:
            total += s
            open(out, "w").write("%d\n" % total)
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port)); srv.listen(64)
open(out, "w").write("0\n")
while True:
    c, _ = srv.accept()
    threading.Thread(target=handle, args=(c,), daemon=True).start()
PY

cat > "$WORK/rcvbuf.js" <<JS
const dgram = require('dgram');
const bind = dgram.Socket.prototype.bind;
dgram.Socket.prototype.bind = function (...a) {
  this.once('listening', () => { try { this.setRecvBufferSize(${ETSY_RCVBUF}); } catch (e) {} });
  return bind.apply(this, a);
};
JS

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
peak_rss_kb() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
TICKS=$(getconf CLK_TCK)

# measure NAME -> prints a result row, sets R_* variables
measure() {
    local name=$1; shift
    local cport; cport=$(free_port)
    python3 "$WORK/capture.py" "$cport" "$WORK/$name.total" & PIDS+=($!)
    local port; port=$(free_port)
    local mport; mport=$(free_port)
    if [ "$name" = etsy ]; then
        cat > "$WORK/etsy.js" <<JS
{ port: $port, address: "127.0.0.1", mgmt_port: $mport, mgmt_address: "127.0.0.1",
  flushInterval: $FLUSH_MS, graphiteHost: "127.0.0.1", graphitePort: $cport,
  automaticConfigReload: false }
JS
        local preload=()
        [ "$ETSY_RCVBUF" != 0 ] && preload=(-r "$WORK/rcvbuf.js")
        node "${preload[@]}" "$NODE_DIR/node_modules/statsd/stats.js" "$WORK/etsy.js" > "$WORK/etsy.log" 2>&1 &
    else
        "$BIN/statsd_server" --listen "127.0.0.1:$port" --carbon "127.0.0.1:$cport" \
            --flush-interval "${FLUSH_MS}ms" > "$WORK/charcoal.log" 2>&1 &
    fi
    local spid=$!; PIDS+=($spid)
    sleep 1.5
    local c0; c0=$(cpu_ticks "$spid")
    local out
    out=$("$BIN/bench_statsd" --target "127.0.0.1:$port" --count 4000000000 --duration "$DURATION" \
        --lines-per-datagram "$LPD" --rate "$RATE" --names "$NAMES" --kind counter)
    # Let the server finish the backlog and flush it twice.
    sleep $(( 2 * FLUSH_MS / 1000 + 2 ))
    local c1; c1=$(cpu_ticks "$spid")
    local rss; rss=$(peak_rss_kb "$spid")
    kill -TERM "$spid"; wait "$spid" 2>/dev/null || true
    local sent secs
    sent=$(sed -E 's/^sent ([0-9]+) lines.* in ([0-9.]+) s:.*/\1/' <<<"$out")
    secs=$(sed -E 's/^sent ([0-9]+) lines.* in ([0-9.]+) s:.*/\2/' <<<"$out")
    local got; got=$(cat "$WORK/$name.total")
    python3 - "$name" "$sent" "$secs" "$got" "$c0" "$c1" "$TICKS" "$rss" <<'PY' | tee -a "$WORK/rows"
import sys
name, sent, secs, got, c0, c1, tck, rss = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7]), int(sys.argv[8])
cpu = (c1 - c0) / tck
loss = (sent - got) / sent * 100 if sent else 0
print(f"{name:10s} sent {sent:>11d}  flushed {got:>11d}  loss {loss:6.2f}%  "
      f"{got/secs:>11.0f} lines/s  cpu {cpu:6.2f} s  {got/max(cpu,1e-9):>11.0f} lines/cpu-s  peak rss {rss/1024:6.1f} MiB")
PY
    echo "$name $got $secs $(( c1 - c0 )) $rss $sent" >> "$WORK/raw"
}

# measure_baseline NAME [ARGS] -> the bare recvmmsg loop on the same load; prints a row,
# appends to raw
measure_baseline() {
    local name=$1; shift
    local port; port=$(free_port)
    "$BIN/recvmmsg_baseline" --listen "127.0.0.1:$port" --idle 2s "$@" > "$WORK/baseline.out" 2>&1 &
    local bpid=$!; PIDS+=($bpid)
    sleep 1
    local out
    out=$("$BIN/bench_statsd" --target "127.0.0.1:$port" --count 4000000000 --duration "$DURATION" \
        --lines-per-datagram "$LPD" --rate "$RATE" --names "$NAMES" --kind counter)
    local rss=0
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        [ -r "/proc/$bpid/status" ] && rss=$(peak_rss_kb "$bpid")
        kill -0 "$bpid" 2>/dev/null || break
        sleep 1
    done
    wait "$bpid"
    local sent secs
    sent=$(sed -E 's/^sent ([0-9]+) lines.* in ([0-9.]+) s:.*/\1/' <<<"$out")
    secs=$(sed -E 's/^sent ([0-9]+) lines.* in ([0-9.]+) s:.*/\2/' <<<"$out")
    local got cpu
    got=$(sed -E 's/^received [0-9]+ datagrams ([0-9]+) lines.*/\1/' "$WORK/baseline.out")
    cpu=$(sed -E 's/.*cpu ([0-9.]+) s$/\1/' "$WORK/baseline.out")
    python3 - "$name" "$sent" "$secs" "$got" "$cpu" "$rss" <<'PY' | tee -a "$WORK/rows"
import sys
name, sent, secs, got, cpu, rss = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
loss = (sent - got) / sent * 100 if sent else 0
print(f"{name:10s} sent {sent:>11d}  received {got:>10d}  loss {loss:6.2f}%  "
      f"{got/secs:>11.0f} lines/s  cpu {cpu:6.2f} s  {got/max(cpu,1e-9):>11.0f} lines/cpu-s  peak rss {rss/1024:6.1f} MiB")
PY
    echo "$name $got $secs $(python3 -c "print(round($cpu * $TICKS))") $rss $sent" >> "$WORK/raw"
}

if [ -w /proc/sys/net/core/rmem_max ] && [ "$ETSY_RCVBUF" -gt "$OLD_RMEM" ]; then
    echo "$ETSY_RCVBUF" > /proc/sys/net/core/rmem_max
fi
echo "load: duration $DURATION, rate ${RATE:-0} lines/s (0 = unlimited), $LPD lines/datagram, $NAMES counters, flush ${FLUSH_MS} ms, $ROUNDS round(s)"
measure etsy
for _ in $(seq "$ROUNDS"); do
    measure charcoal
    # The plain loop (blocks in recvmmsg, woken per datagram when it keeps up), and the
    # same loop with the 500 µs pause after a partial batch that Charcoal's workers take.
    measure_baseline bare
    measure_baseline bare-pause --pause-us 500
done
python3 - "$WORK/raw" "$TICKS" <<'PY'
import statistics, sys
runs = {}
for l in open(sys.argv[1]):
    n, got, secs, ticks, rss, sent = l.split()
    runs.setdefault(n, []).append((
        int(got) / float(secs),                                # delivered lines/s
        int(got) / max(int(ticks) / int(sys.argv[2]), 1e-9),   # lines per CPU-second
        int(rss),
        int(sent) / float(secs),                               # sender's rate
        (int(sent) - int(got)) / max(int(sent), 1) * 100))     # loss %
# Median of each column over the rounds (the machine's noise moves the sender's rate).
rows = {n: tuple(statistics.median(col) for col in zip(*rs)) for n, rs in runs.items()}
e, c = rows["etsy"], rows["charcoal"]
med = " (medians over rounds)" if len(runs["charcoal"]) > 1 else ""
print(f"ratio charcoal/etsy{med}: throughput {c[0]/e[0]:.1f}x, lines per CPU-second {c[1]/e[1]:.1f}x, peak RSS {c[2]/e[2]:.2f}x")
for n in ("bare", "bare-pause"):
    b = rows[n]
    per = ", ".join(f"{cr[0]/br[0]*100:.0f}%" for cr, br in zip(runs["charcoal"], runs[n]))
    print(f"charcoal vs {n} recvmmsg loop{med}: {c[0]/b[0]*100:.1f}% of its rate "
          f"({c[0]:.0f} vs {b[0]:.0f} lines/s delivered; per round {per})")
print("loss at the sender's top rate: " + ", ".join(
    f"{n} {rows[n][4]:.2f}% at {rows[n][3]:.0f} lines/s" for n in ("charcoal", "bare", "bare-pause", "etsy")))
PY
