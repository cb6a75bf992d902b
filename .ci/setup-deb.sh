#!/usr/bin/env bash
# Installs what the Debian package test (tests/it/deb.rs, CHARCOAL_INTEROP=1) needs:
#   - cargo-deb (pinned; compiled from crates.io, a few minutes on 2 cores) into
#     $CARGO_HOME/bin, where `cargo deb` finds it,
#   - what cargo-deb and the package's maintainer scripts call: adduser (system user),
#     init-system-helpers (deb-systemd-helper), binutils (strip, objcopy), dpkg-dev
#     (dpkg-shlibdeps for Depends), util-linux (runuser), procps (/bin/kill, ExecReload),
#   - systemd's `systemd-analyze` for `verify` of the unit (systemd is installed, not run).
# Idempotent: with everything present it only checks. Runs as root on Debian 12.
set -euo pipefail

CARGO_DEB_VERSION=3.8.0

missing=()
command -v adduser >/dev/null 2>&1 || missing+=(adduser)
command -v deb-systemd-helper >/dev/null 2>&1 || missing+=(init-system-helpers)
command -v strip >/dev/null 2>&1 || missing+=(binutils)
command -v runuser >/dev/null 2>&1 || missing+=(util-linux)
[ -x /bin/kill ] || missing+=(procps)
command -v dpkg-shlibdeps >/dev/null 2>&1 || missing+=(dpkg-dev)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "setup-deb: need root and apt-get to install: ${missing[*]}" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! cargo deb --version 2>/dev/null | grep -qF "$CARGO_DEB_VERSION"; then
    cargo install --locked --quiet cargo-deb --version "=${CARGO_DEB_VERSION}"
fi
echo "setup-deb: $(cargo deb --version), adduser, deb-systemd-helper, strip, runuser, systemd-analyze present"
