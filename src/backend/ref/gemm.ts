// Reference GEMM family: plain triple loops, written to mirror the contract in ../kernels.ts
// line by line. Sums are accumulated in double precision, so the reference is at least as
// accurate as any float32 kernel it is compared with.
import type { F32, I32 } from '../kernels.js';
import { UnaryOp } from '../op_codes.js';
import { unary, unaryBackward } from './elementwise.js';

/**
 * One strided GEMM on sub-arrays starting at aOff/bOff/cOff:
 *   C[i,j] = alpha * sum_p op(A)[i,p] * op(B)[p,j] + beta * C[i,j] + bias[biasOff + j]
 * op(A)[i,p] = transA ? a[aOff + p*lda + i] : a[aOff + i*lda + p]
 * op(B)[p,j] = transB ? b[bOff + j*ldb + p] : b[bOff + p*ldb + j]
 * beta == 0 ignores C's old value entirely (so NaN/Inf there do not propagate).
 */
function gemmAt(transA: boolean, transB: boolean, m: number, n: number, k: number, alpha: number,
  a: F32, aOff: number, lda: number, b: F32, bOff: number, ldb: number,
  beta: number, c: F32, cOff: number, ldc: number, bias: F32 | null, biasOff: number): void {
  // op(A)[i,p] = a[aOff + i*ars + p*acs], op(B)[p,j] = b[bOff + p*brs + j*bcs]
  const ars = transA ? 1 : lda, acs = transA ? lda : 1;
  const brs = transB ? 1 : ldb, bcs = transB ? ldb : 1;
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += a[aOff + i * ars + p * acs] * b[bOff + p * brs + j * bcs];
      const ci = cOff + i * ldc + j;
      let v = alpha * s;
      if (beta !== 0) v += beta * c[ci];
      if (bias) v += bias[biasOff + j];
      c[ci] = v;
    }
  }
}

/** C = alpha * op(A) @ op(B) + beta * C (+ bias row-broadcast). See Kernels.gemm. */
export function gemm(transA: boolean, transB: boolean, m: number, n: number, k: number, alpha: number,
  a: F32, lda: number, b: F32, ldb: number, beta: number, c: F32, ldc: number, bias: F32 | null): void {
  gemmAt(transA, transB, m, n, k, alpha, a, 0, lda, b, 0, ldb, beta, c, 0, ldc, bias, 0);
}

/** y = alpha * op(A) x + beta * y, A stored [m, n]. See Kernels.gemv. */
export function gemv(trans: boolean, m: number, n: number, alpha: number, a: F32, lda: number, x: F32, beta: number, y: F32): void {
  if (trans) gemmAt(true, false, n, 1, m, alpha, a, 0, lda, x, 0, 1, beta, y, 0, 1, null, 0);
  else gemmAt(false, false, m, 1, n, alpha, a, 0, lda, x, 0, 1, beta, y, 0, 1, null, 0);
}

/**
 * gemm() then a unary epilogue on each row of C (see Kernels.gemmUnary): forward writes
 * aux = f(C) and keeps C; backward sets C = C * f'(aux).
 */
export function gemmUnary(op: number, backward: boolean, transA: boolean, transB: boolean, m: number, n: number,
  k: number, alpha: number, a: F32, lda: number, b: F32, ldb: number, beta: number, c: F32, ldc: number,
  bias: F32 | null, aux: F32, ldaux: number): void {
  if (backward && (op === UnaryOp.exp || op === UnaryOp.tanh || op === UnaryOp.sigmoid || op === UnaryOp.sqrt)) {
    throw new RangeError(`gemmUnary: the backward epilogue needs f'(x) from x alone; op ${op} takes it from its output`);
  }
  if (m > 0 && n > 0 && aux.length < (m - 1) * ldaux + n) {
    throw new RangeError(`gemmUnary: 'aux' has ${aux.length} elements, needs ${(m - 1) * ldaux + n}`);
  }
  gemmAt(transA, transB, m, n, k, alpha, a, 0, lda, b, 0, ldb, beta, c, 0, ldc, bias, 0);
  for (let i = 0; i < m; i++) {
    const cr = c.subarray(i * ldc, i * ldc + n), ar = aux.subarray(i * ldaux, i * ldaux + n);
    if (backward) unaryBackward(op, ar, ar, cr, cr);
    else unary(op, cr, ar);
  }
}

/** `batch` independent GEMMs; matrix i of A/B/C starts at i*strideA / i*strideB / i*strideC. */
export function gemmBatched(batch: number, transA: boolean, transB: boolean, m: number, n: number, k: number,
  alpha: number, a: F32, strideA: number, lda: number, b: F32, strideB: number, ldb: number,
  beta: number, c: F32, strideC: number, ldc: number): void {
  for (let i = 0; i < batch; i++) {
    gemmAt(transA, transB, m, n, k, alpha, a, i * strideA, lda, b, i * strideB, ldb, beta, c, i * strideC, ldc, null, 0);
  }
}

/**
 * Grouped GEMM over row ranges: rows offsets[g] .. offsets[g+1]-1 of A and C use weight matrix
 * B_g = b[g*strideB ...] and bias row g. An empty group does nothing.
 */
export function gemmGroupedRows(G: number, offsets: I32, transB: boolean, n: number, k: number, alpha: number,
  a: F32, lda: number, b: F32, strideB: number, ldb: number, beta: number, c: F32, ldc: number,
  bias: F32 | null): void {
  for (let g = 0; g < G; g++) {
    const r0 = offsets[g], rows = offsets[g + 1] - r0;
    gemmAt(false, transB, rows, n, k, alpha, a, r0 * lda, lda, b, g * strideB, ldb,
      beta, c, r0 * ldc, ldc, bias, g * n);
  }
}

/**
 * Grouped weight gradient: C_g = alpha * A[rows_g]^T @ B[rows_g] + beta * C_g, i.e. a GEMM with
 * op(A) = transpose of A's row block ([m, rows_g]) and depth k = rows_g. Empty groups scale C_g by beta.
 */
export function gemmGroupedK(G: number, offsets: I32, m: number, n: number, alpha: number,
  a: F32, lda: number, b: F32, ldb: number, beta: number, c: F32, strideC: number, ldc: number): void {
  for (let g = 0; g < G; g++) {
    const r0 = offsets[g], rows = offsets[g + 1] - r0;
    gemmAt(true, false, m, n, rows, alpha, a, r0 * lda, lda, b, r0 * ldb, ldb, beta, c, g * strideC, ldc, null, 0);
  }
}
