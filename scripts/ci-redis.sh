#!/usr/bin/env bash
# Installs Debian's redis-server for the queue tests (test/queue*.test.ts start their own private
# server on a free port in a temp folder: test/redis_server.ts) unless it is already there. The
# Debian package may start a system service: it is stopped and disabled, the tests need none.
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then
  echo "redis-server: $(redis-server --version)"
  exit 0
fi
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends redis-server
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet redis-server 2>/dev/null; then
  $SUDO systemctl disable --now redis-server || true
elif command -v service >/dev/null 2>&1; then
  $SUDO service redis-server stop >/dev/null 2>&1 || true
fi
redis-server --version
