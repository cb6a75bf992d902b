#!/usr/bin/env bash
# Regenerates tests/data/expected/*: the output of Debian's stock Munin plugins (package
# munin-node 2.0.73) run by `munin-run` against the fixture files in proc-vm/, which are bind
# mounted over the live /proc files in a private mount namespace. The built-in plugins' unit
# tests compare their output on the same fixtures with these files.
# Needs root (unshare -m, mount --bind) and munin-node installed (.ci/setup-munin.sh).
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p expected
run() { # plugin, then pairs of fixture:/proc/target
    local plugin=$1; shift
    local mounts=""
    for pair in "$@"; do
        mounts+="mount --bind $PWD/${pair%%:*} ${pair#*:} && "
    done
    unshare -m sh -c "${mounts} munin-run $plugin config" >"expected/$plugin.config"
    unshare -m sh -c "${mounts} munin-run $plugin" >"expected/$plugin.fetch"
}
run memory proc-vm/meminfo:/proc/meminfo
run cpu proc-vm/stat:/proc/stat
run load proc-vm/loadavg:/proc/loadavg
run uptime proc-vm/uptime:/proc/uptime
run forks proc-vm/stat:/proc/stat
run interrupts proc-vm/stat:/proc/stat
run swap proc-vm/vmstat:/proc/vmstat
run open_files proc-vm/sys/fs/file-nr:/proc/sys/fs/file-nr
run entropy proc-vm/sys/kernel/random/entropy_avail:/proc/sys/kernel/random/entropy_avail
run vmstat proc-vm/stat:/proc/stat proc-vm/meminfo:/proc/meminfo proc-vm/vmstat:/proc/vmstat
