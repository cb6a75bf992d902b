#!/usr/bin/env bash
# Installs what the node-agent interop tests need (CHARCOAL_INTEROP=1 cargo test -p charcoal-node-agent):
#   - Debian's `munin` (the master: /usr/share/munin/munin-update, rrdtool bindings)
#   - Debian's `munin-node` (the reference node and the stock plugins in /usr/share/munin/plugins)
# Idempotent; runs as root on Debian 12. The Debian services are never started: a temporary
# policy-rc.d forbids it during the install (munin-node would bind every address on 4949), and
# the tests start their own scratch munin-node on a free loopback port.
# The tests find the programs at their Debian paths; override with
#   CHARCOAL_MUNIN_UPDATE (default /usr/share/munin/munin-update),
#   CHARCOAL_MUNIN_NODE   (default /usr/sbin/munin-node),
#   CHARCOAL_MUNIN_PLUGINS (default /usr/share/munin/plugins).
set -euo pipefail
. "$(dirname "$0")/apt-install.sh"

need=()
for pkg in munin munin-node; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
        need+=("$pkg")
    fi
done

if ((${#need[@]})); then
    apt_install "${need[@]}"
fi

# munin-update refuses to run as root; the tests run it as this user.
id munin >/dev/null
test -x /usr/share/munin/munin-update
test -x /usr/sbin/munin-node
test -d /usr/share/munin/plugins
