#!/usr/bin/env bash
# Installs Debian's carbon-c-relay for the one-machine scale-out test (tests/it/cluster.rs,
# CHARCOAL_INTEROP=1 cargo test -p charcoal cluster): a relay consistently hashing Carbon
# plaintext over two Charcoal stores, read through a third Charcoal as web front end.
# The test runs $CHARCOAL_RELAY (default /usr/bin/carbon-c-relay) with its own config file and a
# free port; the packaged service is kept from starting (it would take port 2003).
# Idempotent; runs as root on Debian 12.
set -euo pipefail
. "$(dirname "$0")/apt-install.sh"

relay=${CHARCOAL_RELAY:-/usr/bin/carbon-c-relay}

if [ ! -x "$relay" ]; then
    apt_install carbon-c-relay
fi
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl disable --now carbon-c-relay >/dev/null 2>&1 || true
fi

test -x "$relay"
echo "setup-relay: $("$relay" -v 2>&1 | head -n 1)"
