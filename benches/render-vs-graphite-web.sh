#!/usr/bin/env bash
# Render latency, Charcoal vs graphite-web 1.1.10, side by side on the same whisper files
# (written by Python's whisper): 100 series x 7 days at 1-minute resolution.
# Usage: benches/render-vs-graphite-web.sh [REQUESTS]   (needs .ci/setup-graphite-web.sh)
#
# Charcoal is the real `charcoal web` binary (mimalloc as its allocator: a 7-day request
# allocates and frees tens of MB, and with glibc's defaults much of the time went to page
# faults on fresh memory). Prints median and p90 per server and query, and the ratio of
# medians.
set -euo pipefail
cd "$(dirname "$0")/.."
requests=${1:-30}
venv=${CHARCOAL_GRAPHITE_WEB:-/opt/charcoal-interop/graphite-web}
now=1795012380
work=$(mktemp -d)
gw_pid=
cc_pid=
stop_servers() {
    if [ -n "$cc_pid" ]; then kill -TERM "$cc_pid" 2>/dev/null || true; wait "$cc_pid" 2>/dev/null || true; fi
    if [ -n "$gw_pid" ]; then kill "$gw_pid" 2>/dev/null || true; wait "$gw_pid" 2>/dev/null || true; fi
    cc_pid= gw_pid=
}
trap 'stop_servers; rm -rf "$work"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

"$venv/bin/python" web/tests/data/gw_fixture.py "$work" "$now" bench >/dev/null
export CHARCOAL_GW_STORAGE_DIR=$work PYTHONPATH=$venv/settings GRAPHITE_SETTINGS_MODULE=charcoal_gw_settings \
    DJANGO_SETTINGS_MODULE=graphite.settings GRAPHITE_NO_PREFIX=1
"$venv/bin/django-admin" migrate --run-syncdb -v0
cargo build --release -q -p charcoal

# Prints "median p90" in milliseconds of $requests timed GETs (after 2 warm-up requests).
measure() {
    local url=$1 i
    curl -sf -o /dev/null "$url"
    curl -sf -o /dev/null "$url"
    for i in $(seq 1 "$requests"); do
        curl -sf -o /dev/null -w '%{time_total}\n' "$url"
    done | sort -n | awk '{ a[NR] = $1 * 1000 } END { printf "%.2f %.2f\n", a[int((NR + 1) / 2)], a[int(NR * 0.9 + 0.5)] }'
}

queries=(
    "target=sumSeries(bench.*.value)&from=-7d&format=json"
    "target=aliasSub(sumSeries(bench.*.value),%22(%5E.*%24)%22,%22%5C1%20A%22)&from=-7d&format=json&maxDataPoints=1200"
    "target=bench.*.value&from=-7d&format=json&maxDataPoints=1000"
    "target=movingAverage(bench.host000.value,%2710min%27)&from=-7d&format=json"
)

round() {
    local label=$1
    shift
    local gw_port cc_port port q
    gw_port=$(free_port)
    env "$@" "$venv/bin/gunicorn" --bind "127.0.0.1:$gw_port" --workers 1 --timeout 300 \
        graphite.wsgi:application >>"$work/gunicorn.log" 2>&1 &
    gw_pid=$!
    cc_port=$(free_port)
    env "$@" target/release/charcoal web --data-dir "$work/whisper" --listen "127.0.0.1:$cc_port" \
        --log-format json >/dev/null </dev/null &
    cc_pid=$!
    for port in "$gw_port" "$cc_port"; do
        for _ in $(seq 1 300); do
            curl -sf "http://127.0.0.1:$port/version" >/dev/null && break
            sleep 0.2
        done
    done
    echo "== $label (load: $(cut -d' ' -f1-3 /proc/loadavg))"
    printf '%-64s %22s %20s %7s\n' "query (now=$now)" "graphite-web med/p90" "charcoal med/p90" "ratio"
    for q in "${queries[@]}"; do
        read -r gw_med gw_p90 < <(measure "http://127.0.0.1:$gw_port/render?$q&now=$now")
        read -r cc_med cc_p90 < <(measure "http://127.0.0.1:$cc_port/render?$q&now=$now")
        ratio=$(awk -v a="$gw_med" -v b="$cc_med" 'BEGIN { printf "%.1fx", a / b }')
        printf '%-64.64s %9s/%8s ms %8s/%7s ms %7s\n' "$q" "$gw_med" "$gw_p90" "$cc_med" "$cc_p90" "$ratio"
    done
    stop_servers
}

round "charcoal web vs graphite-web" CHARCOAL_ROUND=default
