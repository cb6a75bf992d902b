#!/usr/bin/env bash
# The README's run command on a fresh clone: `cargo run --release` starts the whole stack with
# an embedded data directory, and within one agent interval the host overview dashboard has
# data for this host. Ports are moved off the defaults through CHARCOAL_* variables (the
# machine may run other services); everything else is the default configuration.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

git clone -q "$repo" "$work/charcoal"
cd "$work/charcoal"
web=$(free_port)
export CARGO_TARGET_DIR="$repo/target"  # reuse the dependencies already built
export CHARCOAL_WEB__LISTEN=127.0.0.1:$web
export CHARCOAL_STATSD__LISTEN=127.0.0.1:$(free_port)
export CHARCOAL_STATSD__ADMIN_LISTEN=127.0.0.1:$(free_port)
export CHARCOAL_CARBON__LISTEN=127.0.0.1:$(free_port)
export CHARCOAL_AGENT__MUNIN_LISTEN=127.0.0.1:$(free_port)
cargo run --release -q > "$work/log" 2>&1 &
pid=$!

deadline=$(( $(date +%s) + 600 ))  # includes compiling the workspace crates
until curl -sf "http://127.0.0.1:$web/ready" > /dev/null; do
  kill -0 "$pid" 2>/dev/null || { cat "$work/log"; echo "charcoal exited"; exit 1; }
  [ "$(date +%s)" -lt "$deadline" ] || { cat "$work/log"; echo "not ready"; exit 1; }
  sleep 1
done
echo "ready; waiting for the host overview to have data"
curl -sf "http://127.0.0.1:$web/api/dashboards/host-overview" > /dev/null
# The dashboard's first graph with its $host variable as '*'.
target=$(curl -sf "http://127.0.0.1:$web/api/dashboards/host-overview" |
  python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["graphs"][0]["targets"][0].replace("$host","*"))')
deadline=$(( $(date +%s) + 60 ))
while :; do
  if curl -sf -G "http://127.0.0.1:$web/render" --data-urlencode "target=$target" \
      -d from=-5min -d format=json |
      python3 -c 'import json,sys; s=json.load(sys.stdin); sys.exit(0 if any(p[0] is not None for x in s for p in x["datapoints"]) else 1)'; then
    echo "host overview has data: $target"
    break
  fi
  [ "$(date +%s)" -lt "$deadline" ] || { tail -20 "$work/log"; echo "no data for $target"; exit 1; }
  sleep 2
done
# The page itself and a PNG of the same graph.
curl -sf "http://127.0.0.1:$web/" | grep -qi "<html"
curl -sf -G "http://127.0.0.1:$web/render" --data-urlencode "target=$target" -d from=-5min -o "$work/graph.png"
file "$work/graph.png" 2>/dev/null | grep -q PNG || python3 -c 'import sys; d=open(sys.argv[1],"rb").read(8); sys.exit(0 if d==b"\x89PNG\r\n\x1a\n" else 1)' "$work/graph.png"
kill -TERM "$pid"
wait "$pid"
pid=
echo "fresh clone: ok"
