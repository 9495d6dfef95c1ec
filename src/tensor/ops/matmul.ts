/** Matrix products on the native GEMM. Transposed views are passed as flags, never copied. */
import { backend, ReduceOp } from '../../backend/index.js';
import { Tensor, attach } from '../tensor.js';

interface MatOperand {
  data: Float32Array; // storage starting at the first element
  trans: boolean; // stored as the transpose of the logical matrix
  ld: number; // row stride of the stored matrix
  batchStride: number;
}

/** Describes the last two axes of t as a (possibly transposed) strided matrix, copying only if needed. */
function operand(t: Tensor): { op: MatOperand; src: Tensor } {
  const n = t.ndim;
  const [sr, sc] = [t.strides[n - 2], t.strides[n - 1]];
  const [r, c] = [t.shape[n - 2], t.shape[n - 1]];
  const batchOk = n === 2 || (n === 3 && (t.shape[0] === 1 || t.strides[0] >= r * c));
  if (t.dtype === 'f32' && batchOk) {
    const data = (t.data as Float32Array).subarray(t.offset);
    const batchStride = n === 3 ? t.strides[0] : 0;
    if (sc === 1 && sr >= c) return { op: { data, trans: false, ld: Math.max(sr, 1), batchStride }, src: t };
    if (sr === 1 && sc >= r) return { op: { data, trans: true, ld: Math.max(sc, 1), batchStride }, src: t };
  }
  const tc = t.contiguous();
  return { op: { data: tc.f32, trans: false, ld: Math.max(c, 1), batchStride: n === 3 ? r * c : 0 }, src: tc };
}

/**
 * Matrix product. a: [m,k] or [B,m,k]; b: [k,n] or [B,k,n] (a 2-D b is shared across the batch).
 * Result [m,n] or [B,m,n].
 */
export function matmul(a: Tensor, b: Tensor): Tensor {
  if (a.ndim === 3 && b.ndim === 2) {
    const [B, m, k] = a.shape;
    return matmul(a.reshape(B * m, k), b).reshape(B, m, b.shape[1]);
  }
  if (!((a.ndim === 2 && b.ndim === 2) || (a.ndim === 3 && b.ndim === 3))) {
    throw new Error(`matmul: unsupported ranks [${a.shape.join(', ')}] @ [${b.shape.join(', ')}]`);
  }
  const batched = a.ndim === 3;
  const B = batched ? a.shape[0] : 1;
  const m = a.shape[a.ndim - 2], k = a.shape[a.ndim - 1], n = b.shape[b.ndim - 1];
  if (b.shape[b.ndim - 2] !== k || (batched && b.shape[0] !== B)) {
    throw new Error(`matmul: shapes [${a.shape.join(', ')}] and [${b.shape.join(', ')}] do not match`);
  }
  const { op: A, src: as } = operand(a);
  const { op: Bm, src: bs } = operand(b);
  const out = new Float32Array(B * m * n);
  const kern = backend();
  if (batched) {
    kern.gemmBatched(B, A.trans, Bm.trans, m, n, k, 1, A.data, A.batchStride, A.ld, Bm.data, Bm.batchStride, Bm.ld, 0, out, m * n, n);
  } else {
    kern.gemm(A.trans, Bm.trans, m, n, k, 1, A.data, A.ld, Bm.data, Bm.ld, 0, out, n, null);
  }
  const shape = batched ? [B, m, n] : [m, n];
  return attach(new Tensor(out, shape), [as, bs], (g) => {
    let ga: Float32Array | null = null, gb: Float32Array | null = null;
    if (as.requiresGrad) {
      // dA = g @ op(B)^T : [m,n] x [n,k]
      ga = new Float32Array(B * m * k);
      if (batched) kern.gemmBatched(B, false, !Bm.trans, m, k, n, 1, g, m * n, n, Bm.data, Bm.batchStride, Bm.ld, 0, ga, m * k, k);
      else kern.gemm(false, !Bm.trans, m, k, n, 1, g, n, Bm.data, Bm.ld, 0, ga, k, null);
    }
    if (bs.requiresGrad) {
      // dB = op(A)^T @ g : [k,m] x [m,n]
      gb = new Float32Array(B * k * n);
      if (batched) kern.gemmBatched(B, !A.trans, false, k, n, m, 1, A.data, A.batchStride, A.ld, g, m * n, n, 0, gb, k * n, n);
      else kern.gemm(!A.trans, false, k, n, m, 1, A.data, A.ld, g, n, 0, gb, n, null);
    }
    return [ga, gb];
  }, 'matmul');
}

/**
 * Affine map as in torch.nn.Linear: y = x W^T + b. x: [..., in], w: [out, in], b: [out] or null.
 * The bias add is fused into the GEMM's store.
 */
export function linear(x: Tensor, w: Tensor, b: Tensor | null): Tensor {
  const inF = w.shape[1], outF = w.shape[0];
  if (x.shape[x.ndim - 1] !== inF) throw new Error(`linear: input [${x.shape.join(', ')}] does not match weight [${w.shape.join(', ')}]`);
  if (b && (b.ndim !== 1 || b.shape[0] !== outF)) throw new Error(`linear: bias [${b.shape.join(', ')}] does not match weight [${w.shape.join(', ')}]`);
  const xc = x.contiguous(), wc = w.contiguous();
  const M = x.size / inF;
  const y = new Float32Array(M * outF);
  const kern = backend();
  const X = xc.f32, W = wc.f32;
  kern.gemm(false, true, M, outF, inF, 1, X, inF, W, inF, 0, y, outF, b ? b.f32 : null);
  const shape = [...x.shape.slice(0, -1), outF];
  const inputs = b ? [xc, wc, b] : [xc, wc];
  return attach(new Tensor(y, shape), inputs, (g) => {
    let gx: Float32Array | null = null, gw: Float32Array | null = null, gb: Float32Array | null = null;
    if (xc.requiresGrad) {
      gx = new Float32Array(M * inF);
      kern.gemm(false, false, M, inF, outF, 1, g, outF, W, inF, 0, gx, inF, null); // g @ W
    }
    if (wc.requiresGrad) {
      gw = new Float32Array(outF * inF);
      kern.gemm(true, false, outF, inF, M, 1, g, outF, X, inF, 0, gw, inF, null); // g^T @ x
    }
    if (b && b.requiresGrad) {
      gb = new Float32Array(outF);
      kern.reduce(ReduceOp.sum, 1, M, outF, g, gb, null);
    }
    return b ? [gx, gw, gb] : [gx, gw];
  }, 'linear');
}
