#!/usr/bin/env bash
# Installs Debian's Chromium for the dashboard's browser tests (test/dashboard_browser.test.ts drives
# it through playwright-core, which downloads no browser) unless one is already there.
set -euo pipefail
CHROMIUM="${MOELAB_CHROMIUM:-/usr/bin/chromium}"
if [ -x "$CHROMIUM" ]; then
  echo "chromium: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
  exit 0
fi
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends chromium
/usr/bin/chromium --version
