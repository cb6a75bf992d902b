#!/usr/bin/env bash
# Installs the reference carbon-cache for the Carbon interop tests (tests/it/carbon_interop.rs,
# CHARCOAL_INTEROP=1 cargo test -p charcoal) and for benches/carbon-vs-references.sh:
#   - a Python venv at $CHARCOAL_CARBON_VENV (default /opt/charcoal-interop/carbon) holding
#     carbon 1.1.10 and whisper 1.1.10 from PyPI (carbon 1.1.10 runs on Python 3.11 with the
#     current Twisted). GRAPHITE_NO_PREFIX keeps carbon's files inside the venv instead of
#     /opt/graphite.
# The tests run `$CHARCOAL_CARBON_VENV/bin/python $CHARCOAL_CARBON_VENV/bin/carbon-cache.py
# --config=DIR/carbon.conf --nodaemon start` with their own config directory and free ports.
# Idempotent; runs as root on Debian 12.
set -euo pipefail

venv=${CHARCOAL_CARBON_VENV:-/opt/charcoal-interop/carbon}

if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends python3-venv python3-pip >/dev/null
fi

stamp="$venv/.charcoal-installed-v1"
if [ ! -e "$stamp" ]; then
    mkdir -p "$venv"
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    GRAPHITE_NO_PREFIX=1 "$venv/bin/pip" install --quiet --no-cache-dir --disable-pip-version-check \
        'carbon==1.1.10' 'whisper==1.1.10'
    touch "$stamp"
fi

"$venv/bin/python" -c 'import carbon.cache, whisper; print("setup-carbon: carbon + whisper in", __import__("sys").prefix)'
test -f "$venv/bin/carbon-cache.py"
