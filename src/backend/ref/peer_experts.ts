// Reference PEER expert forward/backward (token-major and expert-major), the oracle for
// native/ops_peer.cc; contracts in ../kernels/peer.ts. Accumulations run in double precision;
// every stored value is rounded to float32.
import type { F32, I32, U16 } from '../kernels.js';
import { need, dim, len } from './check.js';
import { PeerAct } from '../kernels.js';
import { geluErf, geluErfGrad } from './math.js';
import { bf16BitsToF32 } from '../../io/safetensors.js';

/**
 * The tables as float32: bfloat16 tables (Uint16Array bit patterns) are widened, which is exact,
 * so every kernel computes on bf16 tables what it computes on their widened copies. u and v must
 * have the same type.
 */
function floatTables(fn: string, u: F32 | U16 | null, v: F32 | U16): [F32 | null, F32] {
  const bf = v instanceof Uint16Array;
  if (u && (u instanceof Uint16Array) !== bf) throw new TypeError(`${fn}: tables 'u' and 'v' must both be Float32Array or both Uint16Array (bfloat16)`);
  if (!bf) return [u as F32 | null, v as F32];
  const widen = (t: U16): F32 => Float32Array.from(t, bf16BitsToF32);
  return [u ? widen(u as U16) : null, widen(v)];
}

/** act(x) for an activation code (GELU is the exact erf form, as torch's F.gelu). */
function actF(act: number, x: number): number {
  return act === PeerAct.gelu ? geluErf(x) : x > 0 ? x : 0;
}

/** act'(x). */
function actD(act: number, x: number): number {
  return act === PeerAct.gelu ? geluErfGrad(x) : x > 0 ? 1 : 0;
}

function checkAct(fn: string, act: number): void {
  if (act !== PeerAct.gelu && act !== PeerAct.relu) throw new RangeError(`${fn}: unknown activation code ${act}`);
}

/**
 * The checks every expert kernel shares: sizes, k dividing hk, the activation code, x, v and ids
 * long enough, and every id in [0, N).
 */
function checkExperts(fn: string, T: number, d: number, N: number, hk: number, k: number, act: number, x: F32, v: F32, ids: I32): void {
  dim(fn, 'T', T); dim(fn, 'd', d, 1); dim(fn, 'N', N, 1); dim(fn, 'hk', hk, 1); dim(fn, 'k', k, 1);
  need(hk % k === 0, fn, `hk (${hk}) must be a multiple of k (${k})`);
  checkAct(fn, act);
  len(fn, 'x', x, T * d); len(fn, 'v', v, N * d); len(fn, 'ids', ids, T * hk);
  for (let i = 0; i < T * hk; i++) need(ids[i] >= 0 && ids[i] < N, fn, `id ${ids[i]} out of range [0, ${N})`);
}

/** Softmax backward within each group of k: gscores = g (dg - sum_group g dg), for n entries. */
function softmaxGroupsBackward(n: number, k: number, g: F32, dg: Float64Array, gscores: F32): void {
  for (let r = 0; r < n; r += k) {
    let s = 0;
    for (let j = r; j < r + k; j++) s += g[j] * dg[j];
    for (let j = r; j < r + k; j++) gscores[j] = g[j] * (dg[j] - s);
  }
}

/** Softmax of each group of k scores into g (double arithmetic, float storage). */
function softmaxGroups(rows: number, k: number, scores: F32, g: F32): void {
  for (let r = 0; r < rows; r++) {
    let mx = -Infinity;
    for (let j = 0; j < k; j++) mx = Math.max(mx, scores[r * k + j]);
    let sum = 0;
    for (let j = 0; j < k; j++) sum += Math.exp(scores[r * k + j] - mx);
    for (let j = 0; j < k; j++) g[r * k + j] = Math.exp(scores[r * k + j] - mx) / sum;
  }
}

/**
 * Expert forward; see Kernels.peerForward. g = softmax over each head's k scores;
 * a[t,j] = u[ids[t,j]] . x[t]; y[t] = sum_j g[t,j] act(a[t,j]) v[ids[t,j]] (pkm, u null: g v).
 */
export function peerForward(T: number, d: number, N: number, hk: number, k: number, act: number,
  x: F32, uT: F32 | U16 | null, vT: F32 | U16, ids: I32, scores: F32, g: F32, a: F32 | null, y: F32): void {
  const fn = 'peerForward';
  const [u, v] = floatTables(fn, uT, vT);
  checkExperts(fn, T, d, N, hk, k, act, x, v, ids);
  len(fn, 'scores', scores, T * hk); len(fn, 'g', g, T * hk); len(fn, 'y', y, T * d);
  if (u) { len(fn, 'u', u, N * d); len(fn, 'a', a, T * hk); }
  softmaxGroups(T * hk / k, k, scores, g);
  const acc = new Float64Array(d);
  for (let t = 0; t < T; t++) {
    acc.fill(0);
    for (let j = 0; j < hk; j++) {
      const e = t * hk + j, id = ids[e];
      let w = g[e];
      if (u) {
        let dot = 0;
        for (let c = 0; c < d; c++) dot += u[id * d + c] * x[t * d + c];
        a![e] = dot;
        w *= actF(act, a![e]);
      }
      for (let c = 0; c < d; c++) acc[c] += w * v[id * d + c];
    }
    for (let c = 0; c < d; c++) y[t * d + c] = acc[c];
  }
}

/**
 * Expert backward, token side; see Kernels.peerBackward. With w = g act(a), gw = gy . v[id]:
 *   cv = w (coefficient of gy in v's row gradient), cu = gw g act'(a) (coefficient of x in u's),
 *   gx[t] = sum_j cu[t,j] u[id]   and   gscores = softmax backward of dg = gw act(a).
 */
export function peerBackward(T: number, d: number, N: number, hk: number, k: number, act: number,
  x: F32, uT: F32 | U16 | null, vT: F32 | U16, ids: I32, g: F32, a: F32 | null, gy: F32,
  gx: F32 | null, gscores: F32, cu: F32 | null, cv: F32): void {
  const fn = 'peerBackward';
  const [u, v] = floatTables(fn, uT, vT);
  checkExperts(fn, T, d, N, hk, k, act, x, v, ids);
  len(fn, 'g', g, T * hk); len(fn, 'gy', gy, T * d); len(fn, 'gscores', gscores, T * hk); len(fn, 'cv', cv, T * hk);
  if (u) { len(fn, 'u', u, N * d); len(fn, 'a', a, T * hk); len(fn, 'gx', gx, T * d); len(fn, 'cu', cu, T * hk); }
  const dg = new Float64Array(T * hk), acc = new Float64Array(d);
  for (let t = 0; t < T; t++) {
    acc.fill(0);
    for (let j = 0; j < hk; j++) {
      const e = t * hk + j, id = ids[e];
      let gw = 0;
      for (let c = 0; c < d; c++) gw += gy[t * d + c] * v[id * d + c];
      if (u) {
        const av = a![e], f = actF(act, av);
        cv[e] = g[e] * f;
        dg[e] = gw * f;
        const cuv = gw * g[e] * actD(act, av);
        cu![e] = cuv;
        for (let c = 0; c < d; c++) acc[c] += cuv * u[id * d + c];
      } else {
        cv[e] = g[e];
        dg[e] = gw;
      }
    }
    if (u) for (let c = 0; c < d; c++) gx![t * d + c] = acc[c];
  }
  softmaxGroupsBackward(T * hk, k, g, dg, gscores);
}

/**
 * Expert-major backward; see Kernels.peerBackwardRows. Same quantities as peerBackward plus
 * peerRowGrad for both tables, from the coalesced index (uniq, offsets, order) of ids.
 */
export function peerBackwardRows(T: number, d: number, N: number, hk: number, k: number, act: number,
  x: F32, uT: F32 | U16 | null, vT: F32 | U16, ids: I32, g: F32, a: F32 | null, gy: F32,
  U: number, uniq: I32, offsets: I32, order: I32, gx: F32 | null, gscores: F32, gu: F32 | null, gv: F32 | null): void {
  const fn = 'peerBackwardRows';
  const [u, v] = floatTables(fn, uT, vT);
  checkExperts(fn, T, d, N, hk, k, act, x, v, ids);
  dim(fn, 'U', U);
  const n = T * hk;
  len(fn, 'g', g, n); len(fn, 'gy', gy, T * d); len(fn, 'uniq', uniq, U); len(fn, 'offsets', offsets, U + 1); len(fn, 'order', order, n); len(fn, 'gscores', gscores, n);
  if (u) { len(fn, 'u', u, N * d); len(fn, 'a', a, n); len(fn, 'gx', gx, T * d); }
  else if (gu) throw new TypeError(`${fn}: 'gu' must be null without u`);
  if (gu) len(fn, 'gu', gu, U * d);
  if (gv) len(fn, 'gv', gv, U * d);
  need(U > 0 ? offsets[0] === 0 && offsets[U] === n : n === 0, fn, 'offsets must span exactly T*hk positions');
  const seen = new Uint8Array(n);
  for (let i = 0; i < U; i++) {
    need(offsets[i + 1] >= offsets[i], fn, 'offsets must be non-decreasing');
    for (let p = offsets[i]; p < offsets[i + 1]; p++) {
      const pos = order[p];
      need(pos >= 0 && pos < n && !seen[pos] && ids[pos] === uniq[i], fn, `order/uniq do not match ids at order[${p}]`);
      seen[pos] = 1;
    }
  }
  const dg = new Float64Array(n);
  const gxa = new Float64Array(u ? T * d : 0), ru = new Float64Array(d), rv = new Float64Array(d);
  for (let i = 0; i < U; i++) {
    const row = uniq[i] * d;
    ru.fill(0);
    rv.fill(0);
    for (let p = offsets[i]; p < offsets[i + 1]; p++) {
      const pos = order[p], t = Math.floor(pos / hk);
      let gw = 0;
      for (let c = 0; c < d; c++) gw += gy[t * d + c] * v[row + c];
      let cv: number;
      if (u) {
        const f = actF(act, a![pos]);
        cv = g[pos] * f;
        dg[pos] = gw * f;
        const cu = gw * g[pos] * actD(act, a![pos]);
        for (let c = 0; c < d; c++) {
          gxa[t * d + c] += cu * u[row + c];
          ru[c] += cu * x[t * d + c];
        }
      } else {
        cv = g[pos];
        dg[pos] = gw;
      }
      for (let c = 0; c < d; c++) rv[c] += cv * gy[t * d + c];
    }
    if (gu) for (let c = 0; c < d; c++) gu[i * d + c] = ru[c];
    if (gv) for (let c = 0; c < d; c++) gv[i * d + c] = rv[c];
  }
  if (u) for (let i = 0; i < T * d; i++) gx![i] = gxa[i];
  softmaxGroupsBackward(n, k, g, dg, gscores);
}

function checkUnion(fn: string, T: number, hk: number, k: number, act: number, U: number, cols: I32): void {
  dim(fn, 'T', T); dim(fn, 'hk', hk, 1); dim(fn, 'k', k, 1); dim(fn, 'U', U, 1);
  need(hk % k === 0, fn, `hk (${hk}) must be a multiple of k (${k})`);
  checkAct(fn, act);
  len(fn, 'cols', cols, T * hk);
  for (let i = 0; i < T * hk; i++) need(cols[i] >= 0 && cols[i] < U, fn, `cols[${i}] = ${cols[i]} out of range [0, ${U})`);
}

/** Gate side of the dense union path; see Kernels.peerUnionForward. */
export function peerUnionForward(T: number, hk: number, k: number, act: number, U: number, cols: I32, scores: F32,
  A: F32 | null, g: F32, a: F32 | null, W: F32): void {
  const fn = 'peerUnionForward';
  checkUnion(fn, T, hk, k, act, U, cols);
  len(fn, 'scores', scores, T * hk); len(fn, 'g', g, T * hk); len(fn, 'W', W, T * U);
  if (A) { len(fn, 'A', A, T * U); len(fn, 'a', a, T * hk); }
  softmaxGroups(T * hk / k, k, scores, g);
  const acc = new Float64Array(U);
  for (let t = 0; t < T; t++) {
    acc.fill(0);
    for (let j = 0; j < hk; j++) {
      const e = t * hk + j, c = cols[e];
      let w = g[e];
      if (A) {
        a![e] = A[t * U + c];
        w *= actF(act, a![e]);
      }
      acc[c] += w;
    }
    for (let i = 0; i < U; i++) W[t * U + i] = acc[i];
  }
}

/** Backward of the union gates; see Kernels.peerUnionBackward. */
export function peerUnionBackward(T: number, hk: number, k: number, act: number, U: number, cols: I32, g: F32,
  a: F32 | null, GW: F32, gscores: F32, C: F32 | null): void {
  const fn = 'peerUnionBackward';
  checkUnion(fn, T, hk, k, act, U, cols);
  need(!a === !C, fn, "'a' and 'C' must both be given or both be null");
  len(fn, 'g', g, T * hk); len(fn, 'GW', GW, T * U); len(fn, 'gscores', gscores, T * hk);
  if (a) { len(fn, 'a', a, T * hk); len(fn, 'C', C, T * U); }
  const dg = new Float64Array(T * hk), acc = new Float64Array(U);
  for (let t = 0; t < T; t++) {
    acc.fill(0);
    for (let j = 0; j < hk; j++) {
      const e = t * hk + j, c = cols[e], gw = GW[t * U + c];
      if (a) {
        dg[e] = gw * actF(act, a[e]);
        acc[c] += gw * g[e] * actD(act, a[e]);
      } else {
        dg[e] = gw;
      }
    }
    if (C) for (let i = 0; i < U; i++) C[t * U + i] = acc[i];
  }
  softmaxGroupsBackward(T * hk, k, g, dg, gscores);
}
