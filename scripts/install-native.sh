#!/usr/bin/env bash
# npm's install step for the native addon. A checkout without a build compiles everything
# (node-gyp rebuild). One that has a build recompiles only what changed (configure, then make, which
# tracks sources and headers): `npx moelab` in a checkout links the checkout into npm's cache and
# runs this step again, in place, where a rebuild from scratch cost minutes with no output and left
# no addon at all if interrupted.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -f build/Makefile ] && [ -f build/Release/moelab.node ]; then
  node-gyp configure
  node-gyp build -j max
else
  node-gyp rebuild -j max
fi
