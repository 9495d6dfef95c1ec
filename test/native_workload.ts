// A fixed mix of native kernel calls (GEMM, elementwise, reduction, attention, PEER retrieval and
// expert forward/backward) big enough to use the thread pool, returning every output. The
// concurrency test runs it on several worker_threads at once and compares with one thread.
import type { Kernels } from '../src/backend/kernels.js';
import { UnaryOp, BinaryOp, ReduceOp, PeerAct } from '../src/backend/op_codes.js';
import { randn, randint } from './util.js';

export type NativeAddon = Kernels;

export function runWorkload(K: NativeAddon, seed: number): Float32Array[] {
  const out: Float32Array[] = [];
  // GEMM 96x80x128 (parallel grid split)
  const m = 96, n = 80, k = 128;
  const a = randn(m * k, seed + 1), b = randn(k * n, seed + 2), c = new Float32Array(m * n);
  K.gemm(false, true, m, n, k, 1, a, k, b, k, 0, c, n, null);
  out.push(c);
  // elementwise over 200k elements (several pool chunks)
  const N = 200_000;
  const x = randn(N, seed + 3), y = randn(N, seed + 4), z = new Float32Array(N), g = new Float32Array(N);
  K.binary(BinaryOp.mul, Int32Array.of(N), x, 0, Int32Array.of(1), y, 0, Int32Array.of(1), z);
  K.unary(UnaryOp.gelu_tanh, z, g);
  out.push(z, g);
  const r = new Float32Array(400);
  K.reduce(ReduceOp.sum, 400, 500, 1, g, r, null);
  out.push(r);
  // causal attention B=2, S=64, H=2, hd=16
  const B = 2, S = 64, H = 2, hd = 16;
  const qkv = randn(B * S * 3 * H * hd, seed + 5), o = new Float32Array(B * S * H * hd), lse = new Float32Array(B * H * S);
  K.attention(B, S, H, hd, 0.25, qkv, o, lse);
  out.push(o, lse);
  // PEER: retrieval, expert forward, coalesce, expert-major backward
  const T = 48, h = 2, nSub = 16, half = 8, kk = 4, d = 32, NE = nSub * nSub, hk = h * kk;
  const q = randn(T * h * 2 * half, seed + 6), keys = randn(2 * nSub * half, seed + 7);
  const ids = new Int32Array(T * hk), scores = new Float32Array(T * hk);
  K.peerRetrieve(T, h, nSub, half, kk, q, keys, ids, scores);
  const px = randn(T * d, seed + 8), u = randn(NE * d, seed + 9), v = randn(NE * d, seed + 10);
  const pg = new Float32Array(T * hk), pa = new Float32Array(T * hk), py = new Float32Array(T * d);
  K.peerForward(T, d, NE, hk, kk, PeerAct.gelu, px, u, v, ids, scores, pg, pa, py);
  out.push(scores, pg, pa, py);
  const uniq = new Int32Array(T * hk), offs = new Int32Array(T * hk + 1), order = new Int32Array(T * hk);
  const U = K.peerCoalesce(T * hk, NE, ids, uniq, offs, order);
  const gy = randn(T * d, seed + 11), gx = new Float32Array(T * d), gs = new Float32Array(T * hk);
  const gu = new Float32Array(U * d), gv = new Float32Array(U * d);
  K.peerBackwardRows(T, d, NE, hk, kk, PeerAct.gelu, px, u, v, ids, pg, pa, gy, U, uniq, offs, order, gx, gs, gu, gv);
  out.push(gx, gs, gu, gv);
  // index kernels
  const table = randn(300 * 24, seed + 12), rows = randint(5000, 300, seed + 13), sel = new Float32Array(5000 * 24);
  K.indexSelect(5000, 24, table, rows, sel);
  out.push(sel);
  return out;
}
