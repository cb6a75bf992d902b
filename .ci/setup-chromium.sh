#!/usr/bin/env bash
# Installs the browser for charcoal-web's UI end-to-end tests
# (CHARCOAL_INTEROP=1 cargo test -p charcoal-web):
#   - Debian's `chromium` (the tests start /usr/bin/chromium headless; override with
#     $CHARCOAL_CHROMIUM),
#   - Node.js and npm from Debian if missing,
#   - `playwright-core` from npm into $CHARCOAL_PLAYWRIGHT_DIR
#     (default /opt/charcoal-interop/playwright; the tests read the same variable/default).
#     playwright-core never downloads a browser; the tests pass executablePath explicitly.
# Idempotent: with everything present it only checks. Runs as root on Debian 12.
set -euo pipefail

PW_DIR="${CHARCOAL_PLAYWRIGHT_DIR:-/opt/charcoal-interop/playwright}"
PW_VERSION="1.65.1"

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
if [ "${#need[@]}" -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

mkdir -p "$PW_DIR"
if [ ! -f "$PW_DIR/node_modules/playwright-core/package.json" ]; then
    if [ ! -f "$PW_DIR/package.json" ]; then
        printf '{ "name": "charcoal-interop-playwright", "private": true }\n' > "$PW_DIR/package.json"
    fi
    # PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: belt and braces, playwright-core has no install hook.
    (cd "$PW_DIR" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-audit --no-fund \
        --loglevel=error "playwright-core@$PW_VERSION" >/dev/null)
fi

chromium --version >/dev/null 2>&1
(cd "$PW_DIR" && node -e "require('playwright-core')")
echo "setup-chromium: $(chromium --version 2>/dev/null | head -1), playwright-core in $PW_DIR"
