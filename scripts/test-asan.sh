#!/usr/bin/env bash
# Runs the native kernel tests against the sanitizer build (scripts/build-native-asan.sh), with
# libasan preloaded into node (node itself is not instrumented). Any ASan report or UBSan runtime
# error aborts the test process, so the run fails. Leak checking is off: node's own allocations
# at exit are not ours. Usage: npm run test:asan [-- extra test files]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build-native-asan.sh
npx tsc -p .
LIBASAN="$(gcc -print-file-name=libasan.so)"
LIBUBSAN="$(gcc -print-file-name=libubsan.so)"
FILES=("$@")
if [ ${#FILES[@]} -eq 0 ]; then
  FILES=(dist/test/kernels_*.test.js dist/test/gemm.test.js dist/test/mlp_fused.test.js dist/test/peer.test.js dist/test/peer_ops.test.js dist/test/moe.test.js dist/test/bf16*.test.js dist/test/native_*.test.js dist/test/thread_invariance.test.js)
fi
export MOELAB_ADDON_PATH="$PWD/build-asan/Release/moelab.node"
export LD_PRELOAD="$LIBASAN $LIBUBSAN"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:allocator_may_return_null=1:handle_segv=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
node --test --test-concurrency=1 "${FILES[@]}"
