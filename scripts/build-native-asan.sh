#!/usr/bin/env bash
# Builds the addon with AddressSanitizer + UndefinedBehaviorSanitizer into build-asan/Release/
# (the normal build/ is left alone). node-gyp always builds into ./build, so build-asan/ is a
# staging folder whose binding.gyp, native/ and node_modules/ link back to the package.
# Run the tests on it with scripts/test-asan.sh (npm run test:asan).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
NODE_GYP="$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js"
mkdir -p build-asan
for f in binding.gyp native node_modules; do ln -sfn "$ROOT/$f" "build-asan/$f"; done
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g"
exec 9>/tmp/moelab-build.lock
flock 9
cd build-asan
CXXFLAGS="$SAN" CFLAGS="$SAN" LDFLAGS="-fsanitize=address,undefined" \
  node "$NODE_GYP" configure --nodedir=/usr >/dev/null
CXXFLAGS="$SAN" CFLAGS="$SAN" LDFLAGS="-fsanitize=address,undefined" \
  node "$NODE_GYP" build --nodedir=/usr -j 2 2>&1 | grep -E "error|Error" || true
test -f build/Release/moelab.node
mkdir -p Release
cp build/Release/moelab.node Release/moelab.node
echo "built $ROOT/build-asan/Release/moelab.node"
