#!/usr/bin/env bash
# Installs the peers of charcoal-statsd's interop tests (CHARCOAL_INTEROP=1):
#   - Etsy StatsD 0.9.0 and the hot-shots client from npm into $CHARCOAL_STATSD_NODE_DIR
#     (default /opt/charcoal-interop/node; tests read the same variable/default),
#   - Python's `statsd` client (PyPI) in a venv at $CHARCOAL_STATSD_PY_VENV
#     (default /opt/charcoal-interop/statsd-venv).
# Idempotent: re-running with everything present does nothing but check.
set -euo pipefail

NODE_DIR="${CHARCOAL_STATSD_NODE_DIR:-/opt/charcoal-interop/node}"
PY_VENV="${CHARCOAL_STATSD_PY_VENV:-/opt/charcoal-interop/statsd-venv}"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
    fi
fi

mkdir -p "$NODE_DIR"
if [ ! -f "$NODE_DIR/node_modules/statsd/stats.js" ] || [ ! -d "$NODE_DIR/node_modules/hot-shots" ]; then
    if [ ! -f "$NODE_DIR/package.json" ]; then
        printf '{ "name": "charcoal-interop-node", "private": true }\n' > "$NODE_DIR/package.json"
    fi
    (cd "$NODE_DIR" && npm install --no-audit --no-fund --loglevel=error statsd@0.9.0 hot-shots@17.1.1 >/dev/null)
fi

if [ ! -x "$PY_VENV/bin/python" ]; then
    python3 -m venv "$PY_VENV"
fi
# Run from / so a `statsd/` directory in the current directory cannot shadow the package.
if ! (cd / && "$PY_VENV/bin/python" -c 'import statsd; statsd.StatsClient') >/dev/null 2>&1; then
    "$PY_VENV/bin/pip" install --quiet --disable-pip-version-check 'statsd==4.0.1'
fi
echo "setup-statsd: etsy statsd + hot-shots in $NODE_DIR, python statsd in $PY_VENV"
