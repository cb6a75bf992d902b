#!/usr/bin/env bash
# Cost of the Charcoal node agent against Debian's munin-node and prometheus-node-exporter on
# this host: CPU time per collection round and resident memory.
#
#   benches/agent-vs-munin.sh [ROUNDS]
#
# Needs: a release build of the example (built here), munin-node (.ci/setup-munin.sh) and
# prometheus-node-exporter (apt-get install --no-install-recommends prometheus-node-exporter;
# the Debian service need not run: this script starts its own copy on a loopback port).
# Everything runs on free loopback ports and is stopped by pid at the end.
#
# What is measured:
#  1. agent built-ins, in process: N rounds of Sampler::sample (what `charcoal agent` does
#     every interval), all collectors, then without the per-process scan;
#  2. a munin master round (cap, list, config + fetch of every plugin, fetch skipped when
#     config carried values as munin-update does with dirtyconfig) against
#     a) the agent's munin server (built-ins), b) munin-node running the equivalent stock
#     plugins (cpu load memory uptime forks swap vmstat interrupts entropy open_files
#     processes threads df df_inode diskstats if_<if> if_err_<if>);
#  3. one /metrics scrape of prometheus-node-exporter (default collectors).
# CPU is utime+stime (+cutime+cstime for munin-node, whose plugins are child processes)
# from /proc/<pid>/stat, divided by the number of rounds. RSS is VmRSS after the rounds.
set -euo pipefail

ROUNDS=${1:-50}
HERE=$(cd "$(dirname "$0")/.." && pwd)
SCRATCH=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$SCRATCH"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_ticks() { # utime stime [cutime cstime]
    awk -v kids="${2:-0}" '{ sub(/^.*\) /, ""); t = $12 + $13; if (kids) t += $14 + $15; print t }' "/proc/$1/stat"
}
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
per_round() { awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { printf "%.2f", (b - a) * 10 / n }'; }
wait_port() { for _ in $(seq 1 300); do python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),1)" 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; return 1; }

# A munin master round; prints nothing. Args: port, rounds, plugin list file.
munin_rounds() {
    python3 - "$1" "$2" "$3" <<'PY'
import socket, sys
port, rounds, names = int(sys.argv[1]), int(sys.argv[2]), open(sys.argv[3]).read().split()
def session():
    s = socket.create_connection(("127.0.0.1", port))
    f = s.makefile("rb")
    f.readline()
    def cmd(c, multi):
        s.sendall(c.encode() + b"\n")
        if not multi:
            return [f.readline()]
        out = []
        while True:
            l = f.readline()
            if not l or l == b".\n":
                return out
            out.append(l)
    cmd("cap multigraph dirtyconfig", False)
    cmd("list", False)
    for n in names:
        conf = cmd("config " + n, True)
        if not any(b".value " in l for l in conf):
            cmd("fetch " + n, True)
    s.sendall(b"quit\n")
    s.close()
for _ in range(rounds):
    session()
PY
}

IFACE=$(awk -F'[: ]+' 'NR>2 && $2 != "lo" { print $2, $3 }' /proc/net/dev | sort -k2 -n | tail -1 | cut -d' ' -f1)
IFACE=${IFACE:-lo}
PLUGINS="cpu load memory uptime forks swap vmstat interrupts entropy open_files processes threads df df_inode diskstats if_$IFACE if_err_$IFACE"
echo "$PLUGINS" >"$SCRATCH/plugins.txt"
echo "host: $(nproc) CPUs, $(awk '/MemTotal/ {print $2/1024 " MiB"}' /proc/meminfo), $(ls /proc | grep -c '^[0-9]') processes, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "munin round = cap + list + config/fetch of: $PLUGINS"
echo

echo "== 1. agent built-ins in process (release build) =="
(cd "$HERE" && cargo build --quiet --release -p charcoal-node-agent --example agent_rounds)
BIN="$HERE/target/release/examples/agent_rounds"
"$BIN" --rounds 2000 | sed 's/^/all collectors:        /'
"$BIN" --rounds 2000 --collectors cpu,load,memory,vmstat,network,disk,filesystem,kernel,uptime | sed 's/^/without processes scan: /'
echo

echo "== 2a. agent munin server, $ROUNDS master rounds =="
PORT=$(free_port)
"$BIN" --serve "127.0.0.1:$PORT" >"$SCRATCH/agent.out" 2>&1 &
APID=$!; PIDS+=("$APID")
wait_port "$PORT"
munin_rounds "$PORT" 1 "$SCRATCH/plugins.txt"   # warm up
IDLE=$(rss_kb "$APID")
T0=$(cpu_ticks "$APID")
munin_rounds "$PORT" "$ROUNDS" "$SCRATCH/plugins.txt"
T1=$(cpu_ticks "$APID")
echo "agent: cpu_ms_per_round=$(per_round "$T0" "$T1" "$ROUNDS") rss_kb_idle=$IDLE rss_kb=$(rss_kb "$APID")"
kill "$APID"
echo

echo "== 2b. munin-node 2.0.73 with the stock plugins, $ROUNDS master rounds =="
if [ -x /usr/sbin/munin-node ]; then
    M="$SCRATCH/munin"; mkdir -p "$M/etc/plugins" "$M/etc/plugin-conf.d" "$M/state"
    cp /etc/munin/plugin-conf.d/munin-node "$M/etc/plugin-conf.d/"
    for p in $PLUGINS; do
        case $p in
            if_err_*) ln -s /usr/share/munin/plugins/if_err_ "$M/etc/plugins/$p" ;;
            if_*) ln -s /usr/share/munin/plugins/if_ "$M/etc/plugins/$p" ;;
            *) ln -s "/usr/share/munin/plugins/$p" "$M/etc/plugins/$p" ;;
        esac
    done
    MPORT=$(free_port)
    cat >"$M/etc/munin-node.conf" <<EOF
log_level 4
log_file $M/munin-node.log
pid_file $M/munin-node.pid
background 0
setsid 0
user root
group root
host_name vm
allow ^127\.0\.0\.1\$
host 127.0.0.1
port $MPORT
EOF
    perl -e 'require Munin::Common::Defaults; $Munin::Common::Defaults::MUNIN_CONFDIR = shift; $Munin::Common::Defaults::MUNIN_PLUGSTATE = shift; do "/usr/sbin/munin-node"; die $@ if $@; exit main();' \
        "$M/etc" "$M/state" --config "$M/etc/munin-node.conf" --foreground >"$M/out" 2>&1 &
    MPID=$!; PIDS+=("$MPID")
    wait_port "$MPORT"
    munin_rounds "$MPORT" 1 "$SCRATCH/plugins.txt"
    sleep 1
    IDLE=$(rss_kb "$MPID")
    T0=$(cpu_ticks "$MPID" 1)
    munin_rounds "$MPORT" "$ROUNDS" "$SCRATCH/plugins.txt"
    sleep 1 # let the daemon reap the last session
    T1=$(cpu_ticks "$MPID" 1)
    echo "munin-node: cpu_ms_per_round=$(per_round "$T0" "$T1" "$ROUNDS") rss_kb_daemon=$(rss_kb "$MPID") rss_kb_idle=$IDLE (plus one forked session process per connection and one process per plugin run)"
    kill "$MPID"
else
    echo "munin-node not installed (.ci/setup-munin.sh)"
fi
echo

echo "== 3. prometheus-node-exporter, $ROUNDS scrapes =="
NE=$(command -v prometheus-node-exporter || true)
if [ -n "$NE" ]; then
    NPORT=$(free_port)
    "$NE" --web.listen-address="127.0.0.1:$NPORT" >"$SCRATCH/ne.out" 2>&1 &
    NPID=$!; PIDS+=("$NPID")
    wait_port "$NPORT"
    scrape() { python3 -c "
import urllib.request,sys
for _ in range(int(sys.argv[2])): urllib.request.urlopen('http://127.0.0.1:%s/metrics' % sys.argv[1]).read()" "$NPORT" "$1"; }
    scrape 1
    IDLE=$(rss_kb "$NPID")
    T0=$(cpu_ticks "$NPID")
    scrape "$ROUNDS"
    T1=$(cpu_ticks "$NPID")
    LINES=$(python3 -c "import urllib.request; print(sum(1 for l in urllib.request.urlopen('http://127.0.0.1:$NPORT/metrics').read().decode().splitlines() if not l.startswith('#')))")
    echo "node-exporter: cpu_ms_per_round=$(per_round "$T0" "$T1" "$ROUNDS") rss_kb_idle=$IDLE rss_kb=$(rss_kb "$NPID") series=$LINES"
    kill "$NPID"
else
    echo "prometheus-node-exporter not installed"
fi
