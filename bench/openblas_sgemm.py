#!/usr/bin/python3
"""SGEMM GFLOP/s through numpy (linked to OpenBLAS), the baseline for bench/gemm.ts.

Reads {"shapes": [{"m","n","k","trans"}...], "seconds": s} as JSON on stdin and prints
{"results": [gflops...], "blas": "..."} (same order). trans is NN, NT or TN; a transposed operand is
a `.T` view of a contiguous array, so BLAS gets the transpose flag instead of a copy. Thread count
comes from the environment (OPENBLAS_NUM_THREADS / OMP_NUM_THREADS), set by the caller. Timing: a
warm-up, then repeated runs until the budget is spent (at least 5); the median is reported.
"""
import json
import sys
import time

import numpy as np


def blas_name() -> str:
    try:
        with open('/proc/self/maps') as f:
            libs = {line.split()[-1] for line in f if 'blas' in line}
        return ' '.join(sorted(libs)) or 'unknown'
    except OSError:
        return 'unknown'


def bench(m: int, n: int, k: int, trans: str, seconds: float) -> float:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((k, m) if trans == 'TN' else (m, k), dtype=np.float32)
    b = rng.standard_normal((n, k) if trans == 'NT' else (k, n), dtype=np.float32)
    a_op = a.T if trans == 'TN' else a
    b_op = b.T if trans == 'NT' else b
    c = np.empty((m, n), dtype=np.float32)
    np.matmul(a_op, b_op, out=c)  # warm-up (thread start, page faults)
    t_end = time.perf_counter() + 0.1 * seconds
    while time.perf_counter() < t_end:
        np.matmul(a_op, b_op, out=c)
    times = []
    t_end = time.perf_counter() + seconds
    while len(times) < 5 or (time.perf_counter() < t_end and len(times) < 10000):
        t0 = time.perf_counter()
        np.matmul(a_op, b_op, out=c)
        times.append(time.perf_counter() - t0)
    times.sort()
    med = times[len(times) // 2]
    return 2.0 * m * n * k / med / 1e9


def main() -> None:
    spec = json.load(sys.stdin)
    seconds = float(spec.get('seconds', 1.0))
    out = [bench(int(s['m']), int(s['n']), int(s['k']), str(s['trans']), seconds) for s in spec['shapes']]
    json.dump({'results': out, 'blas': blas_name(), 'numpy': np.__version__}, sys.stdout)


if __name__ == '__main__':
    main()
