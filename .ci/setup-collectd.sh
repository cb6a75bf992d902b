#!/usr/bin/env bash
# Installs Debian's collectd (collectd-core: the daemon and its plugins, no default config)
# for the Carbon interop test in which collectd's write_graphite plugin feeds Charcoal
# (tests/it/carbon_interop.rs, CHARCOAL_INTEROP=1 cargo test -p charcoal collectd).
# The test runs $CHARCOAL_COLLECTD (default /usr/sbin/collectd) in the foreground with its own
# config file; the packaged service is kept from starting.
# Idempotent; runs as root on Debian 12.
set -euo pipefail
. "$(dirname "$0")/apt-install.sh"

collectd=${CHARCOAL_COLLECTD:-/usr/sbin/collectd}

if [ ! -x "$collectd" ]; then
    apt_install collectd-core
fi
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl disable --now collectd >/dev/null 2>&1 || true
fi

test -x "$collectd"
test -f /usr/lib/collectd/write_graphite.so
echo "setup-collectd: collectd-core $(dpkg-query -W -f='${Version}' collectd-core 2>/dev/null || echo "(not from dpkg)")"
