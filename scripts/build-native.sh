#!/usr/bin/env bash
# Incremental native build for development, quiet but for errors and warnings (npm install runs
# scripts/install-native.sh: a full build in a fresh checkout, else incremental).
# Re-runs configure so new .cc files are picked up, then make; a lock keeps concurrent builds from
# clobbering build/.
set -euo pipefail
cd "$(dirname "$0")/.."
NODE_GYP="$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js"
exec 9>/tmp/moelab-build.lock
flock 9
node "$NODE_GYP" configure --nodedir=/usr >/dev/null
node "$NODE_GYP" build --nodedir=/usr -j 2 2>&1 | grep -E "error|warning|Error" || true
test -f build/Release/moelab.node
