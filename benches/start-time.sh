#!/usr/bin/env bash
# Start-up time of `charcoal serve` over a data directory with many metrics: time from exec to
# /ready answering 200 (all listeners up, store open; the index loads in the background), and
# to the first /metrics/find answer that sees every metric.
# Usage: benches/start-time.sh [METRICS] [RUNS]     (default 100000 metrics, 5 runs)
set -euo pipefail
cd "$(dirname "$0")/.."
metrics=${1:-100000}
runs=${2:-5}
cargo build --release -q -p charcoal
bin=target/release/charcoal
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$dir"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Create the files: one point per metric through the Carbon receiver.
carbon=$(free_port)
CHARCOAL_STORE__DEFAULT_RETENTION=60s:1d CHARCOAL_CARBON__METRIC_INTERVAL=0s \
  $bin carbon --data-dir "$dir/data" --listen 127.0.0.1:$carbon --log-format json > "$dir/fill.log" &
fill=$!
sleep 1
$bin bench carbon --target 127.0.0.1:$carbon --metrics "$metrics" --points 1 > /dev/null
kill -TERM $fill; wait $fill || true
echo "files: $(find "$dir/data" -name '*.wsp' | wc -l)"

for run in $(seq "$runs"); do
  web=$(free_port)
  start=$(date +%s.%N)
  $bin serve --data-dir "$dir/data" --web-listen 127.0.0.1:$web --statsd-listen 127.0.0.1:0 \
    --statsd-admin-listen 127.0.0.1:0 --carbon-listen 127.0.0.1:0 --munin-listen "" --no-agent \
    --log-format json > "$dir/serve.log" &
  pid=$!
  until curl -sf "http://127.0.0.1:$web/ready" > /dev/null; do sleep 0.005; done
  ready=$(date +%s.%N)
  # find waits for the background index scan, so its first answer is complete.
  leaves=$(curl -s "http://127.0.0.1:$web/metrics/find?query=bench.b7.*" | grep -o '"leaf":1' | wc -l)
  found=$(date +%s.%N)
  [ "$leaves" -eq $(( metrics / 100 )) ] || { echo "find saw $leaves leaves under bench.b7"; exit 1; }
  kill -TERM $pid; wait $pid || true
  printf 'run %d: ready after %.0f ms, first find (index complete) after %.0f ms\n' \
    "$run" "$(echo "($ready - $start) * 1000" | bc)" "$(echo "($found - $start) * 1000" | bc)"
done
