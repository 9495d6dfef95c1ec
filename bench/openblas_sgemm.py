#!/usr/bin/python3
"""SGEMM timing through numpy (linked to OpenBLAS), the baseline for bench/gemm.ts.

A line-oriented worker so the caller can interleave its own timings with ours, shape by shape:
each stdin line is a JSON request {"m","n","k","trans","seconds"}; the reply is one JSON line
{"times": [seconds per call...]} after a warm-up. trans is NN, NT or TN; a transposed operand is a
`.T` view of a contiguous array, so BLAS gets the transpose flag instead of a copy. The first
output line is {"ready": true, "blas": "...", "numpy": "..."}. Threads come from the environment
(OPENBLAS_NUM_THREADS / OMP_NUM_THREADS), set by the caller.
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


_cache = {}


def operands(m: int, n: int, k: int, trans: str):
    key = (m, n, k, trans)
    if key not in _cache:
        _cache.clear()
        rng = np.random.default_rng(0)
        a = rng.standard_normal((k, m) if trans == 'TN' else (m, k), dtype=np.float32)
        b = rng.standard_normal((n, k) if trans == 'NT' else (k, n), dtype=np.float32)
        a_op = a.T if trans == 'TN' else a
        b_op = b.T if trans == 'NT' else b
        c = np.empty((m, n), dtype=np.float32)
        np.matmul(a_op, b_op, out=c)  # warm-up (thread start, page faults)
        _cache[key] = (a_op, b_op, c)
    return _cache[key]


def run(m: int, n: int, k: int, trans: str, seconds: float) -> list:
    a_op, b_op, c = operands(m, n, k, trans)
    t_end = time.perf_counter() + 0.1 * seconds
    while time.perf_counter() < t_end:
        np.matmul(a_op, b_op, out=c)
    times = []
    t_end = time.perf_counter() + seconds
    while len(times) < 3 or (time.perf_counter() < t_end and len(times) < 10000):
        t0 = time.perf_counter()
        np.matmul(a_op, b_op, out=c)
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    np.matmul(np.ones((4, 4), np.float32), np.ones((4, 4), np.float32))  # load BLAS
    print(json.dumps({'ready': True, 'blas': blas_name(), 'numpy': np.__version__}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        r = json.loads(line)
        times = run(int(r['m']), int(r['n']), int(r['k']), str(r['trans']), float(r.get('seconds', 1.0)))
        print(json.dumps({'times': times}), flush=True)


if __name__ == '__main__':
    main()
