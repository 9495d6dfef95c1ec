// Bounded-time fuzzing of the two untrusted-input boundaries:
//   native  every exported kernel is called with a valid random call mutated in 1..3 arguments
//           (wrong lengths, NaN / huge / negative / fractional numbers, wrong array types, null,
//           aliasing another argument's memory, detached buffers, missing arguments); each call
//           must return or throw a JS Error. A crash or hang is reported with the call that did it.
//   st      random and crafted safetensors files against src/io/safetensors.ts; each read must
//           succeed or throw SafetensorsError, and resident memory must stay bounded.
// The native loop runs in a child process (a segfault must not take the reporter with it) under an
// address-space limit, writing each call's description to a file before making it.
//
//   npm run fuzz -- --seconds 60 [--seed 1] [--only native|st]
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadNative } from '../src/backend/native.js';
import { OP_CODES } from '../src/backend/op_codes.js';
import { readSafetensors, SafetensorsError, writeSafetensors } from '../src/io/safetensors.js';
import { Rng } from '../src/util/random.js';

type Rand = () => number;
function rng(seed: number): Rand {
  const r = new Rng(seed, 9);
  return () => r.uniform();
}

function args(): { seconds: number; seed: number; only: string; child: string } {
  const a = process.argv.slice(2);
  const get = (k: string, d: string) => { const i = a.indexOf(k); return i >= 0 && i + 1 < a.length ? a[i + 1] : d; };
  return { seconds: Number(get('--seconds', '10')), seed: Number(get('--seed', String(Date.now() % 1e9))), only: get('--only', ''), child: get('--child', '') };
}

// ------------------------------------------------------------------ valid calls, one per kernel

type Arg = unknown;
const int = (r: Rand, lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
const F = (r: Rand, n: number) => { const x = new Float32Array(n); for (let i = 0; i < n; i++) x[i] = r() * 4 - 2; return x; };
const I = (r: Rand, n: number, hi: number) => { const x = new Int32Array(n); for (let i = 0; i < n; i++) x[i] = Math.floor(r() * hi); return x; };
const U8 = (r: Rand, n: number) => { const x = new Uint8Array(n); for (let i = 0; i < n; i++) x[i] = r() < 0.5 ? 1 : 0; return x; };
const code = (r: Rand, t: Record<string, number>) => int(r, 0, Object.keys(t).length - 1);
const contig = (shape: number[]) => { const s = new Int32Array(shape.length); let m = 1; for (let k = shape.length - 1; k >= 0; k--) { s[k] = m; m *= shape[k]; } return s; };
const prod = (s: number[]) => s.reduce((a, b) => a * b, 1);

/** A peer setup whose coalesced index is consistent (built with the addon's own peerCoalesce). */
function peerCall(K: Record<string, (...a: Arg[]) => unknown>, r: Rand) {
  const T = int(r, 0, 5), d = int(r, 1, 6), nSub = int(r, 1, 5), N = nSub * nSub, k = int(r, 1, Math.min(3, nSub)), h = int(r, 1, 2), hk = h * k;
  const ids = I(r, T * hk, N), uniq = new Int32Array(T * hk), offsets = new Int32Array(T * hk + 1), order = new Int32Array(T * hk);
  const U = K.peerCoalesce(T * hk, N, ids, uniq, offsets, order) as number;
  return { T, d, N, nSub, k, h, hk, ids, U, uniq, offsets, order };
}

const CALLS: Record<string, (r: Rand, K: Record<string, (...a: Arg[]) => unknown>) => Arg[]> = {
  gemm: (r) => { const m = int(r, 0, 9), n = int(r, 0, 9), k = int(r, 0, 9); return [r() < 0.5, r() < 0.5, m, n, k, 1, F(r, m * k), Math.max(m, k), F(r, k * n), Math.max(k, n), 0.5, F(r, m * n), n, r() < 0.5 ? null : F(r, n)]; },
  gemmUnary: (r) => { const m = int(r, 0, 9), n = int(r, 0, 9), k = int(r, 0, 9), ops = [OP_CODES.unary.gelu_erf, OP_CODES.unary.relu, OP_CODES.unary.silu, OP_CODES.unary.square]; return [ops[int(r, 0, ops.length - 1)], r() < 0.5, r() < 0.5, r() < 0.5, m, n, k, 1, F(r, m * k), Math.max(m, k), F(r, k * n), Math.max(k, n), 0.5, F(r, m * n), n, r() < 0.5 ? null : F(r, n), F(r, m * n), n]; },
  gemv: (r) => { const m = int(r, 0, 6), n = int(r, 0, 6), t = r() < 0.5; return [t, m, n, 1, F(r, m * n), n, F(r, t ? m : n), r() < 0.5 ? 0 : 1, F(r, t ? n : m)]; },
  gemmBf16: (r) => { const m = int(r, 0, 9), n = int(r, 0, 9), k = int(r, 0, 9); return [r() < 0.5, r() < 0.5, m, n, k, 1, F(r, m * k), Math.max(m, k), F(r, k * n), Math.max(k, n), 0.5, F(r, m * n), n, r() < 0.5 ? null : F(r, n), r() < 0.5 ? null : F(r, k), r() < 0.5 ? null : F(r, n)]; },
  gemmUnaryBf16: (r) => { const m = int(r, 0, 9), n = int(r, 0, 9), k = int(r, 0, 9), ops = [OP_CODES.unary.gelu_erf, OP_CODES.unary.relu]; return [ops[int(r, 0, ops.length - 1)], r() < 0.5, r() < 0.5, r() < 0.5, m, n, k, 1, F(r, m * k), Math.max(m, k), F(r, k * n), Math.max(k, n), 0.5, F(r, m * n), n, r() < 0.5 ? null : F(r, n), F(r, m * n), n, r() < 0.5 ? null : F(r, k), null]; },
  gemmBatched: (r) => { const b = int(r, 0, 3), m = int(r, 0, 6), n = int(r, 0, 6), k = int(r, 0, 6), mk = Math.max(m, k), kn = Math.max(k, n); return [b, r() < 0.5, r() < 0.5, m, n, k, 1, F(r, b * mk * mk), mk * mk, mk, F(r, b * kn * kn), kn * kn, kn, 0, F(r, b * m * n), m * n, n]; },
  gemmGroupedRows: (r) => { const G = int(r, 0, 3), n = int(r, 0, 6), k = int(r, 0, 6); const off = new Int32Array(G + 1); for (let g = 1; g <= G; g++) off[g] = off[g - 1] + int(r, 0, 4); const rows = off[G], nk = Math.max(n, k); return [G, off, r() < 0.5, n, k, 1, F(r, rows * k), k, F(r, G * nk * nk), nk * nk, nk, 0, F(r, rows * n), n, r() < 0.5 ? null : F(r, G * n)]; },
  gemmGroupedK: (r) => { const G = int(r, 0, 3), m = int(r, 0, 6), n = int(r, 0, 6); const off = new Int32Array(G + 1); for (let g = 1; g <= G; g++) off[g] = off[g - 1] + int(r, 0, 4); const rows = off[G]; return [G, off, m, n, 1, F(r, rows * m), m, F(r, rows * n), n, 0, F(r, G * m * n), m * n, n]; },
  gemmGroupedRowsBf16: (r) => { const G = int(r, 0, 3), n = int(r, 0, 6), k = int(r, 0, 6); const off = new Int32Array(G + 1); for (let g = 1; g <= G; g++) off[g] = off[g - 1] + int(r, 0, 4); const rows = off[G], nk = Math.max(n, k); return [G, off, r() < 0.5, n, k, 1, F(r, rows * k), k, F(r, G * nk * nk), nk * nk, nk, 0, F(r, rows * n), n, r() < 0.5 ? null : F(r, G * n), r() < 0.5 ? null : F(r, k)]; },
  gemmGroupedKBf16: (r) => { const G = int(r, 0, 3), m = int(r, 0, 6), n = int(r, 0, 6); const off = new Int32Array(G + 1); for (let g = 1; g <= G; g++) off[g] = off[g - 1] + int(r, 0, 4); const rows = off[G]; return [G, off, m, n, 1, F(r, rows * m), m, F(r, rows * n), n, 0, F(r, G * m * n), m * n, n, r() < 0.5 ? null : F(r, m)]; },
  f32ToBf16: (r) => { const n = int(r, 0, 40); return [F(r, n), new Uint16Array(n)]; },
  f32ToBf16Stochastic: (r) => { const n = int(r, 0, 40); return [F(r, n), int(r, 0, 1000), new Uint16Array(n)]; },
  bf16ToF32: (r) => { const n = int(r, 0, 40); return [Uint16Array.from(I(r, n, 65536)), new Float32Array(n)]; },
  expertChoice: (r) => { const T = int(r, 0, 8), E = int(r, 1, 4), C = int(r, 0, T); return [T, E, C, F(r, T * E), new Int32Array(E * C), F(r, E * C)]; },
  copyStrided: (r) => { const s = [int(r, 0, 4), int(r, 0, 4)]; return [Int32Array.from(s), F(r, prod(s)), 0, contig(s), F(r, prod(s)), 0, contig(s)]; },
  binary: (r) => { const s = [int(r, 0, 4), int(r, 0, 4)]; return [code(r, OP_CODES.binary), Int32Array.from(s), F(r, prod(s)), 0, contig(s), F(r, prod(s)), 0, contig(s), F(r, prod(s))]; },
  binaryScalar: (r) => { const n = int(r, 0, 20); return [code(r, OP_CODES.binary), F(r, n), r(), F(r, n)]; },
  unary: (r) => { const n = int(r, 0, 20); return [code(r, OP_CODES.unary), F(r, n), F(r, n)]; },
  unaryBackward: (r) => { const n = int(r, 0, 20); return [code(r, OP_CODES.unary), F(r, n), F(r, n), F(r, n), F(r, n)]; },
  axpy: (r) => { const n = int(r, 0, 20); return [r(), F(r, n), F(r, n)]; },
  fill: (r) => [F(r, int(r, 0, 20)), r()],
  sumSquares: (r) => [F(r, int(r, 0, 20))],
  maskedFill: (r) => { const n = int(r, 0, 20); return [F(r, n), U8(r, n), r(), F(r, n)]; },
  dropout: (r) => { const n = int(r, 0, 20); return [r(), int(r, 0, 1000), F(r, n), F(r, n), U8(r, n)]; },
  reduce: (r) => { const o = int(r, 0, 4), n = int(r, 1, 4), i = int(r, 1, 4); return [code(r, OP_CODES.reduce), o, n, i, F(r, o * n * i), F(r, o * i), r() < 0.5 ? null : new Int32Array(o * i)]; },
  sumInto: (r) => { const s = [int(r, 0, 4), int(r, 0, 4)]; return [Int32Array.from(s), F(r, prod(s)), F(r, s[1]), 0, Int32Array.of(0, 1)]; },
  softmax: (r) => { const a = int(r, 0, 4), n = int(r, 1, 6); return [a, n, F(r, a * n), F(r, a * n), r() < 0.5]; },
  softmaxBackward: (r) => { const a = int(r, 0, 4), n = int(r, 1, 6); return [a, n, F(r, a * n), F(r, a * n), F(r, a * n), r() < 0.5]; },
  crossEntropy: (r) => { const a = int(r, 0, 4), V = int(r, 1, 6); return [a, V, F(r, a * V), I(r, a, V), F(r, a), F(r, a)]; },
  crossEntropyBackward: (r) => { const a = int(r, 0, 4), V = int(r, 1, 6); return [a, V, F(r, a * V), I(r, a, V), F(r, a), F(r, a), F(r, a * V)]; },
  layerNorm: (r) => { const a = int(r, 0, 4), d = int(r, 1, 6); return [a, d, 1e-5, F(r, a * d), F(r, d), F(r, d), F(r, a * d), F(r, a), F(r, a)]; },
  layerNormBackward: (r) => { const a = int(r, 0, 4), d = int(r, 1, 6); return [a, d, F(r, a * d), F(r, d), F(r, a), F(r, a), F(r, a * d), F(r, a * d), F(r, d), F(r, d)]; },
  attention: (r) => { const B = int(r, 0, 2), S = int(r, 0, 5), H = int(r, 1, 2), hd = int(r, 0, 9); return [B, S, H, hd, 0.3, F(r, B * S * 3 * H * hd), F(r, B * S * H * hd), F(r, B * H * S)]; },
  attentionBackward: (r) => { const B = int(r, 0, 2), S = int(r, 0, 5), H = int(r, 1, 2), hd = int(r, 0, 9); return [B, S, H, hd, 0.3, F(r, B * S * 3 * H * hd), F(r, B * S * H * hd), F(r, B * H * S), F(r, B * S * H * hd), F(r, B * S * 3 * H * hd)]; },
  attentionBf16: (r) => { const B = int(r, 0, 2), S = int(r, 0, 5), H = int(r, 1, 2), hd = int(r, 0, 9); return [B, S, H, hd, 0.3, F(r, B * S * 3 * H * hd), F(r, B * S * H * hd), F(r, B * H * S)]; },
  attentionBackwardBf16: (r) => { const B = int(r, 0, 2), S = int(r, 0, 5), H = int(r, 1, 2), hd = int(r, 0, 9); return [B, S, H, hd, 0.3, F(r, B * S * 3 * H * hd), F(r, B * S * H * hd), F(r, B * H * S), F(r, B * S * H * hd), F(r, B * S * 3 * H * hd)]; },
  attentionKV: (r) => { const Sq = int(r, 0, 3), H = int(r, 1, 2), hd = int(r, 0, 9), p0 = int(r, 0, 4); return [Sq, H, hd, p0, 0.3, F(r, Sq * H * hd), F(r, (p0 + Sq) * H * hd), F(r, (p0 + Sq) * H * hd), F(r, Sq * H * hd)]; },
  indexSelect: (r) => { const n = int(r, 0, 6), d = int(r, 0, 4), rows = int(r, 1, 5); return [n, d, F(r, rows * d), I(r, n, rows), F(r, n * d)]; },
  indexAdd: (r) => { const n = int(r, 0, 6), d = int(r, 0, 4), rows = int(r, 1, 5); return [n, d, I(r, n, rows), F(r, n * d), F(r, rows * d)]; },
  gather: (r) => { const a = int(r, 0, 4), n = int(r, 1, 5), k = int(r, 0, 4); return [a, n, k, F(r, a * n), I(r, a * k, n), F(r, a * k)]; },
  scatterAdd: (r) => { const a = int(r, 0, 4), n = int(r, 1, 5), k = int(r, 0, 4); return [a, n, k, I(r, a * k, n), F(r, a * k), F(r, a * n)]; },
  topk: (r) => { const a = int(r, 0, 4), n = int(r, 0, 40), k = int(r, 0, n); return [a, n, k, F(r, a * n), F(r, a * k), new Int32Array(a * k)]; },
  argsortInt: (r) => { const n = int(r, 0, 10), nk = int(r, 1, 5); return [n, I(r, n, nk), nk, new Int32Array(n), new Int32Array(nk)]; },
  embeddingBag: (r) => { const b = int(r, 0, 3), p = int(r, 0, 3), d = int(r, 1, 4), rows = int(r, 1, 5); return [b, p, d, F(r, rows * d), I(r, b * p, rows), F(r, b * p), F(r, b * d)]; },
  embeddingBagBackward: (r) => { const b = int(r, 0, 3), p = int(r, 0, 3), d = int(r, 1, 4), rows = int(r, 1, 5); return [b, p, d, F(r, rows * d), I(r, b * p, rows), F(r, b * p), F(r, b * d), F(r, b * p), r() < 0.5 ? null : F(r, rows * d)]; },
  randn: (r) => [F(r, int(r, 0, 20)), int(r, 0, 1000), 0, 1],
  adamw: (r) => { const n = int(r, 0, 20); return [F(r, n), F(r, n), F(r, n), new Float32Array(n), 1e-3, 0.9, 0.999, 1e-8, 0.1, 0.5, 0.5]; },
  peerRetrieve: (r) => { const T = int(r, 0, 4), h = int(r, 1, 2), nSub = int(r, 1, 20), half = int(r, 1, 4), k = int(r, 1, nSub); return [T, h, nSub, half, k, F(r, T * h * 2 * half), F(r, 2 * nSub * half), new Int32Array(T * h * k), F(r, T * h * k)]; },
  peerRetrieveBackward: (r) => { const T = int(r, 0, 4), h = int(r, 1, 2), nSub = int(r, 1, 6), half = int(r, 1, 4), k = int(r, 1, nSub); return [T, h, nSub, half, k, F(r, T * h * 2 * half), F(r, 2 * nSub * half), I(r, T * h * k, nSub * nSub), F(r, T * h * k), F(r, T * h * 2 * half), F(r, 2 * nSub * half)]; },
  peerForward: (r, K) => { const p = peerCall(K, r), pkm = r() < 0.3; return [p.T, p.d, p.N, p.hk, p.k, code(r, OP_CODES.peerAct), F(r, p.T * p.d), pkm ? null : F(r, p.N * p.d), F(r, p.N * p.d), p.ids, F(r, p.T * p.hk), F(r, p.T * p.hk), pkm ? null : F(r, p.T * p.hk), F(r, p.T * p.d)]; },
  peerBackward: (r, K) => { const p = peerCall(K, r), pkm = r() < 0.3; return [p.T, p.d, p.N, p.hk, p.k, code(r, OP_CODES.peerAct), F(r, p.T * p.d), pkm ? null : F(r, p.N * p.d), F(r, p.N * p.d), p.ids, F(r, p.T * p.hk), pkm ? null : F(r, p.T * p.hk), F(r, p.T * p.d), pkm ? null : F(r, p.T * p.d), F(r, p.T * p.hk), pkm ? null : F(r, p.T * p.hk), F(r, p.T * p.hk)]; },
  peerBackwardRows: (r, K) => { const p = peerCall(K, r), pkm = r() < 0.3; return [p.T, p.d, p.N, p.hk, p.k, code(r, OP_CODES.peerAct), F(r, p.T * p.d), pkm ? null : F(r, p.N * p.d), F(r, p.N * p.d), p.ids, F(r, p.T * p.hk), pkm ? null : F(r, p.T * p.hk), F(r, p.T * p.d), p.U, p.uniq, p.offsets, p.order, pkm ? null : F(r, p.T * p.d), F(r, p.T * p.hk), pkm ? null : F(r, p.U * p.d), F(r, p.U * p.d)]; },
  peerUnionForward: (r) => { const T = int(r, 0, 4), h = int(r, 1, 2), k = int(r, 1, 3), hk = h * k, U = int(r, 1, 6), pkm = r() < 0.3; return [T, hk, k, code(r, OP_CODES.peerAct), U, I(r, T * hk, U), F(r, T * hk), pkm ? null : F(r, T * U), F(r, T * hk), pkm ? null : F(r, T * hk), F(r, T * U)]; },
  peerUnionBackward: (r) => { const T = int(r, 0, 4), h = int(r, 1, 2), k = int(r, 1, 3), hk = h * k, U = int(r, 1, 6), pkm = r() < 0.3; return [T, hk, k, code(r, OP_CODES.peerAct), U, I(r, T * hk, U), F(r, T * hk), pkm ? null : F(r, T * hk), F(r, T * U), F(r, T * hk), pkm ? null : F(r, T * U)]; },
  peerCoalesce: (r) => { const n = int(r, 0, 12), N = int(r, 1, 30); return [n, N, I(r, n, N), new Int32Array(n), new Int32Array(n + 1), new Int32Array(n)]; },
  peerRowGrad: (r, K) => { const p = peerCall(K, r), per = p.hk; return [p.U, p.d, per, p.offsets, p.order, r() < 0.5 ? null : F(r, p.T * p.hk), F(r, p.T * p.d), F(r, p.U * p.d)]; },
  sparseAdam: (r) => { const N = int(r, 1, 6), d = int(r, 1, 4), U = int(r, 0, N), bf = r() < 0.5; const ids = Int32Array.from({ length: U }, (_, i) => i); const mv = () => (bf ? new Uint16Array(N * d) : new Float32Array(N * d)); return [U, d, ids, F(r, U * d), F(r, N * d), mv(), mv(), 1e-3, 0.9, 0.999, 1e-8, 0.5, 0.5]; },
  peerBatchNorm: (r) => { const T = int(r, 2, 6), C = int(r, 1, 4); return [T, C, r() < 0.5, 1e-5, 0.1, F(r, T * C), F(r, C), F(r, C), F(r, C), new Float32Array(C).fill(1), F(r, T * C), F(r, C), F(r, C)]; },
  peerBatchNormBackward: (r) => { const T = int(r, 2, 6), C = int(r, 1, 4); return [T, C, r() < 0.5, F(r, T * C), F(r, C), F(r, C), F(r, C), F(r, T * C), F(r, T * C), F(r, C), F(r, C)]; },
  peerAdviseHugePages: (r) => [F(r, int(r, 0, 20))],
  setThreads: (r) => [int(r, 1, 4)],
};
// Functions with no arguments to mutate.
const NO_ARGS = new Set(['cpuInfo', 'getThreads', 'opCodes']);

// ------------------------------------------------------------------ mutations

const NUMBERS = [NaN, Infinity, -Infinity, -1, -0.5, 0.5, 1.5, 2 ** 31, 2 ** 31 - 1, 2 ** 32, 2 ** 53, 2 ** 53 + 2, 1e300, -(2 ** 31), 0, 1, 46341, 1 << 24];

function detached(): Float32Array {
  const a = new Float32Array(8);
  structuredClone(a.buffer, { transfer: [a.buffer] });
  return a;
}

function mutate(r: Rand, a: Arg[]): { args: Arg[]; what: string[] } {
  const out = a.slice();
  const what: string[] = [];
  const count = int(r, 1, 3);
  for (let m = 0; m < count; m++) {
    const i = int(r, 0, Math.max(0, out.length - 1));
    const v = out[i];
    const kind = int(r, 0, 9);
    if (kind <= 2 && typeof v === 'number') {
      out[i] = NUMBERS[int(r, 0, NUMBERS.length - 1)];
      what.push(`arg${i}=${out[i]}`);
    } else if (kind <= 2 && ArrayBuffer.isView(v)) {
      const t = v as Float32Array;
      const len = r() < 0.5 ? Math.max(0, t.length - int(r, 1, 3)) : t.length + int(r, 1, 3);
      out[i] = new (t.constructor as Float32ArrayConstructor)(len);
      what.push(`arg${i}.length=${len}`);
    } else if (kind === 3) {
      // alias: another array argument's memory, or a shifted view of it
      const js = out.map((x, j) => (ArrayBuffer.isView(x) ? j : -1)).filter((j) => j >= 0 && j !== i);
      if (js.length && ArrayBuffer.isView(v)) {
        const j = js[int(r, 0, js.length - 1)];
        const src = out[j] as Float32Array;
        const Ctor = (v as Float32Array).constructor as Float32ArrayConstructor;
        const off = Math.min(src.byteLength, int(r, 0, 2) * 4);
        const n = Math.floor((src.byteLength - off) / Ctor.BYTES_PER_ELEMENT);
        try {
          out[i] = new Ctor(src.buffer, src.byteOffset + off, n);
          what.push(`arg${i} aliases arg${j}+${off}B`);
        } catch { /* detached or misaligned: not a view we can make */ }
      }
    } else if (kind === 4) {
      out[i] = detached();
      what.push(`arg${i}=detached`);
    } else if (kind === 5) {
      const alts: Arg[] = [null, undefined, 'x', {}, [1, 2], new Float64Array(4), new Int32Array(4), new Uint16Array(4), new Uint8Array(4), true, 3n];
      out[i] = alts[int(r, 0, alts.length - 1)];
      what.push(`arg${i}=${describe(out[i])}`);
    } else if (kind === 6) {
      out.length = int(r, 0, out.length);
      what.push(`argc=${out.length}`);
    } else if (kind === 7 && ArrayBuffer.isView(v) && (v as Int32Array).length > 0) {
      const t = v as Int32Array;
      t[int(r, 0, t.length - 1)] = NUMBERS[int(r, 0, NUMBERS.length - 1)] as number;
      what.push(`arg${i}[*] poked`);
    } else if (typeof v === 'number') {
      out[i] = v + (r() < 0.5 ? 1 : -1);
      what.push(`arg${i}=${out[i]}`);
    }
  }
  return { args: out, what };
}

function describe(x: Arg): string {
  if (ArrayBuffer.isView(x)) return `${x.constructor.name}(${(x as Float32Array).length})`;
  if (typeof x === 'bigint') return `${x}n`;
  return typeof x === 'string' ? JSON.stringify(x) : String(x === undefined ? 'undefined' : JSON.stringify(x));
}

// ------------------------------------------------------------------ native child

function nativeChild(seconds: number, seed: number, lastFile: string): void {
  const K = loadNative() as unknown as Record<string, (...a: Arg[]) => unknown> | null;
  if (!K) throw new Error('fuzz: native addon not loadable');
  const names = Object.keys(K).filter((n) => typeof K[n] === 'function' && n !== 'name');
  const missing = names.filter((n) => !CALLS[n] && !NO_ARGS.has(n));
  if (missing.length) throw new Error(`fuzz: no valid-call template for ${missing.join(', ')}`);
  const r = rng(seed);
  const fd = openSync(lastFile, 'w');
  const end = Date.now() + seconds * 1000;
  let calls = 0, threw = 0, ok = 0;
  const nonErrors: string[] = [];
  const perKernel: Record<string, number> = {};
  while (Date.now() < end) {
    const name = names[int(r, 0, names.length - 1)];
    if (NO_ARGS.has(name)) { K[name](); continue; }
    const valid = CALLS[name](r, K);
    const { args, what } = r() < 0.1 ? { args: valid, what: ['valid'] } : mutate(r, valid);
    const line = `${name}(${args.map(describe).join(', ')}) [${what.join('; ')}]`;
    writeSync(fd, line.padEnd(600, ' ') + '\n', 0);
    calls++;
    perKernel[name] = (perKernel[name] ?? 0) + 1;
    try {
      K[name](...args);
      ok++;
    } catch (e) {
      threw++;
      if (!(e instanceof Error) || !e.message) nonErrors.push(`${line}: threw ${String(e)}`);
    }
  }
  closeSync(fd);
  if (K.setThreads) K.setThreads(2);
  process.stdout.write(JSON.stringify({ calls, ok, threw, kernels: Object.keys(perKernel).length, nonErrors: nonErrors.slice(0, 20) }) + '\n');
}

function runNative(seconds: number, seed: number): boolean {
  const dir = mkdtempSync(join(tmpdir(), 'moelab-fuzz-'));
  const last = join(dir, 'last-call.txt');
  const self = fileURLToPath(import.meta.url);
  // 6 GiB of address space: an allocation a bad size would need fails (and must become a JS error)
  // instead of exhausting the machine.
  // (Not under AddressSanitizer, whose shadow memory needs more address space than any limit.)
  const limit = /libasan/.test(process.env.LD_PRELOAD ?? '') ? '' : 'ulimit -v 6000000; ';
  const res = spawnSync('bash', ['-c', `${limit}exec "${process.execPath}" "${self}" --child native --seconds ${seconds} --seed ${seed} --last "${last}"`],
    { encoding: 'utf8', timeout: (seconds + 60) * 1000, env: process.env });
  let lastCall = '';
  try { lastCall = readFileSync(last, 'utf8').trim(); } catch { /* none */ }
  rmSync(dir, { recursive: true, force: true });
  if (res.status === 0) {
    const s = JSON.parse(res.stdout.trim().split('\n').pop()!);
    console.log(`native: ${s.calls} calls over ${s.kernels} kernels (${s.ok} returned, ${s.threw} threw a JS error), seed ${seed}`);
    for (const n of s.nonErrors) console.log(`  NOT AN ERROR OBJECT: ${n}`);
    return s.nonErrors.length === 0;
  }
  const how = res.error ? `hung (${res.error.message})` : res.signal ? `died with ${res.signal}` : `exited with ${res.status}`;
  console.log(`native: FAILED, child ${how}, seed ${seed}\n  last call: ${lastCall}\n  stderr: ${(res.stderr ?? '').slice(-2000)}`);
  return false;
}

// ------------------------------------------------------------------ safetensors

function stFile(r: Rand): Buffer {
  const kind = int(r, 0, 9);
  const base = (header: unknown, data: Buffer, lenOverride?: bigint) => {
    const h = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(lenOverride ?? BigInt(h.length));
    return Buffer.concat([len, h, data]);
  };
  const dtypes = ['F32', 'F16', 'BF16', 'I64', 'I32', 'U8', 'BOOL', 'F64', 'X9', '', 'f32'];
  const pick = <T,>(a: T[]) => a[int(r, 0, a.length - 1)];
  const weird = [0, 1, 4, -1, 2 ** 31, 2 ** 53, 2 ** 63, 1e300, 0.5, NaN, '4', null];
  switch (kind) {
    case 0: return Buffer.from(Array.from({ length: int(r, 0, 64) }, () => int(r, 0, 255)));  // random bytes
    case 1: return base({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, Buffer.alloc(8), BigInt(pick([2 ** 40, 2 ** 62, 99, 0, 100_000_001])));
    case 2: return base(pick(['{', '[]', 'null', '{"a":1}', '"x"', '{"a":{"dtype":"F32"}}', '{"__metadata__":{"k":1}}', '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}']), Buffer.alloc(4));
    default: {
      const n = int(r, 0, 3);
      const header: Record<string, unknown> = {};
      let off = 0;
      for (let t = 0; t < n; t++) {
        const shape = Array.from({ length: int(r, 0, 3) }, () => (r() < 0.2 ? pick(weird) : int(r, 0, 4)));
        const dt = r() < 0.2 ? pick(dtypes) : 'F32';
        const bytes = shape.reduce((a: number, b) => a * (typeof b === 'number' ? b : 1), 4);
        const b0 = r() < 0.2 ? pick(weird) : off, b1 = r() < 0.2 ? pick(weird) : off + bytes;
        header[r() < 0.1 ? '' : `t${t}`] = { dtype: dt, shape, data_offsets: r() < 0.1 ? [b0] : [b0, b1] };
        off += Number.isFinite(bytes) ? bytes : 0;
      }
      if (r() < 0.2) header.__metadata__ = r() < 0.5 ? { k: 'v' } : { k: pick(weird) };
      const dataLen = Math.max(0, Math.min(1 << 16, off + int(r, -4, 4)));
      return base(header, Buffer.alloc(dataLen));
    }
  }
}

function runSafetensors(seconds: number, seed: number): boolean {
  const r = rng(seed);
  const dir = mkdtempSync(join(tmpdir(), 'moelab-fuzz-st-'));
  const path = join(dir, 'f.safetensors');
  // a valid file too, byte-flipped
  writeSafetensors(path, { w: { shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) }, b: { shape: [2], data: new Int32Array([5, 6]) } }, { a: 'b' });
  const valid = readFileSync(path);
  const end = Date.now() + seconds * 1000;
  const rss0 = process.memoryUsage().rss;
  let reads = 0, ok = 0, refused = 0, maxRss = rss0;
  const bad: string[] = [];
  while (Date.now() < end) {
    let buf: Buffer;
    if (r() < 0.2) {
      buf = Buffer.from(valid);
      for (let f = int(r, 1, 4); f > 0; f--) buf[int(r, 0, buf.length - 1)] = int(r, 0, 255);
      if (r() < 0.3) buf = buf.subarray(0, int(r, 0, buf.length));
    } else buf = stFile(r);
    writeFileSync(path, buf);
    reads++;
    try {
      readSafetensors(path);
      ok++;
    } catch (e) {
      refused++;
      if (!(e instanceof SafetensorsError)) bad.push(`${(e as Error)?.name}: ${(e as Error)?.message} for header ${buf.subarray(8, 200).toString('utf8')}`);
    }
    maxRss = Math.max(maxRss, process.memoryUsage().rss);
  }
  rmSync(dir, { recursive: true, force: true });
  const grew = (maxRss - rss0) / 2 ** 20;
  console.log(`safetensors: ${reads} files read (${ok} accepted, ${refused} refused), peak RSS growth ${grew.toFixed(0)} MiB, seed ${seed}`);
  const uniq = [...new Set(bad.map((b) => b.slice(0, 160)))];
  for (const b of uniq.slice(0, 20)) console.log(`  NOT A SafetensorsError: ${b}`);
  return uniq.length === 0 && grew < 512;
}

// ------------------------------------------------------------------ main

const a = args();
if (a.child === 'native') {
  const i = process.argv.indexOf('--last');
  nativeChild(a.seconds, a.seed, process.argv[i + 1]);
} else {
  const share = a.only ? 1 : 0.5;
  let good = true;
  if (a.only !== 'st') good = runNative(Math.max(1, a.seconds * share), a.seed) && good;
  if (a.only !== 'native') good = runSafetensors(Math.max(1, a.seconds * (a.only ? 1 : 1 - share)), a.seed) && good;
  process.exitCode = good ? 0 : 1;
}
