// Reference PEER kernels (product-key retrieval, expert forward/backward, row-sparse gradient
// coalescing, sparse Adam), written for clarity: the oracle the native versions in
// native/ops_peer.cc are tested against. Contracts are documented in ../peer_kernels.ts.
// Accumulations run in double precision; every stored value is rounded to float32.
import type { F32, I32 } from '../kernels.js';

type U16 = Uint16Array;

function need(ok: boolean, fn: string, msg: string): void {
  if (!ok) throw new RangeError(`${fn}: ${msg}`);
}

function dim(fn: string, name: string, v: number, min = 0): void {
  if (!(Number.isInteger(v) && v >= min)) throw new RangeError(`${fn}: argument '${name}' must be an integer >= ${min}, got ${v}`);
}

function len(fn: string, name: string, a: ArrayLike<number> | null, n: number): void {
  if (!a) throw new TypeError(`${fn}: argument '${name}' is required`);
  if (a.length < n) throw new RangeError(`${fn}: '${name}' has ${a.length} elements, needs ${n}`);
}

// ------------------------------------------------------------------------------ activations

import { PeerAct } from '../op_codes.js';
export { PeerAct };

const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

/** erfc in double precision: positive-term series for |z| < 2.5, continued fraction beyond. */
function erfc(z: number): number {
  if (Number.isNaN(z)) return NaN;
  if (z < 0) return 2 - erfc(-z);
  if (z < 2.5) {
    // erf(z) = 2/sqrt(pi) * z * exp(-z^2) * sum_n (2 z^2)^n / (1*3*5*...*(2n+1))
    const z2 = z * z;
    let term = 1, sum = 1;
    for (let n = 1; n < 300; n++) {
      term *= (2 * z2) / (2 * n + 1);
      sum += term;
      if (term < 1e-17 * sum) break;
    }
    return 1 - (2 / Math.sqrt(Math.PI)) * z * Math.exp(-z2) * sum;
  }
  if (z > 28) return 0;
  // erfc(z) = exp(-z^2)/sqrt(pi) / (z + 1/2 / (z + 1 / (z + 3/2 / (z + ...)))), evaluated from the tail
  let f = z;
  for (let n = 100; n >= 1; n--) f = z + n / 2 / f;
  return Math.exp(-z * z) / Math.sqrt(Math.PI) / f;
}

/** Standard normal cdf. */
function phi(x: number): number {
  return 0.5 * erfc(-x * Math.SQRT1_2);
}

/** act(x) for an activation code (GELU is the exact erf form, as torch's F.gelu). */
export function actF(act: number, x: number): number {
  return act === PeerAct.gelu ? x * phi(x) : x > 0 ? x : 0;
}

/** act'(x). */
export function actD(act: number, x: number): number {
  return act === PeerAct.gelu ? phi(x) + x * INV_SQRT_2PI * Math.exp(-0.5 * x * x) : x > 0 ? 1 : 0;
}

function checkAct(fn: string, act: number): void {
  if (act !== PeerAct.gelu && act !== PeerAct.relu) throw new RangeError(`${fn}: unknown activation code ${act}`);
}

// ------------------------------------------------------------------------------ retrieval

/**
 * Insert (v, i) into the descending list vals/idx holding `cnt` of at most k entries; returns the
 * new count. A full list takes v only if v > its last value, and equal values stay behind older
 * ones, so scanning i ascending yields "descending value, ties keep the lower index". NaN never
 * displaces anything (it is kept only while the list is not full, at its end).
 */
export function topkInsert(vals: Float32Array | Float64Array, idx: Int32Array, cnt: number, k: number, v: number, i: number): number {
  let pos: number;
  if (cnt === k) {
    if (!(v > vals[k - 1])) return cnt;
    pos = k - 1;
  } else {
    pos = cnt++;
  }
  while (pos > 0 && v > vals[pos - 1]) {
    vals[pos] = vals[pos - 1];
    idx[pos] = idx[pos - 1];
    pos--;
  }
  vals[pos] = v;
  idx[pos] = i;
  return cnt;
}

/**
 * Product-key retrieval; see PeerKernels.peerRetrieve. Row r = t*h + j (token t, head j) has its
 * query at q[r*2*half ..]: the first half is scored against keys[0], the second against keys[1].
 */
export function peerRetrieve(T: number, h: number, nSub: number, half: number, k: number,
  q: F32, keys: F32, ids: I32, scores: F32): void {
  const fn = 'peerRetrieve';
  dim(fn, 'T', T); dim(fn, 'h', h, 1); dim(fn, 'nSub', nSub, 1); dim(fn, 'half', half, 1); dim(fn, 'k', k, 1);
  need(k <= nSub, fn, `k (${k}) must be <= nSub (${nSub})`);
  need(nSub * nSub <= 0x7fffffff, fn, `nSub (${nSub}) squared overflows int32 ids`);
  const R = T * h, dk = 2 * half;
  len(fn, 'q', q, R * dk); len(fn, 'keys', keys, 2 * nSub * half);
  len(fn, 'ids', ids, R * k); len(fn, 'scores', scores, R * k);
  const s = [new Float32Array(nSub), new Float32Array(nSub)];
  const tv = [new Float32Array(k), new Float32Array(k)], ti = [new Int32Array(k), new Int32Array(k)];
  const cv = new Float32Array(k), ci = new Int32Array(k);
  for (let r = 0; r < R; r++) {
    for (let hf = 0; hf < 2; hf++) {
      const qo = r * dk + hf * half, ko = hf * nSub * half;
      for (let n = 0; n < nSub; n++) {
        let acc = 0;
        for (let c = 0; c < half; c++) acc += q[qo + c] * keys[ko + n * half + c];
        s[hf][n] = acc;
      }
      let cnt = 0;
      for (let n = 0; n < nSub; n++) cnt = topkInsert(tv[hf], ti[hf], cnt, k, s[hf][n], n);
    }
    // candidates (a, b) with (a+1)(b+1) > k always have >= k candidates ranked before them
    let cnt = 0;
    for (let a = 0; a < k; a++) {
      const bEnd = Math.floor(k / (a + 1));
      for (let b = 0; b < bEnd; b++) cnt = topkInsert(cv, ci, cnt, k, Math.fround(tv[0][a] + tv[1][b]), a * k + b);
    }
    for (let j = 0; j < k; j++) {
      const c = ci[j];
      ids[r * k + j] = ti[0][Math.floor(c / k)] * nSub + ti[1][c % k];
      scores[r * k + j] = cv[j];
    }
  }
}

/**
 * Backward of peerRetrieve for the selected candidates; see PeerKernels.peerRetrieveBackward.
 * score[r, j] = q1[r] . keys[0][i1] + q2[r] . keys[1][i2] with i1 = id / nSub, i2 = id % nSub.
 */
export function peerRetrieveBackward(T: number, h: number, nSub: number, half: number, k: number,
  q: F32, keys: F32, ids: I32, gscores: F32, gq: F32, gkeys: F32): void {
  const fn = 'peerRetrieveBackward';
  dim(fn, 'T', T); dim(fn, 'h', h, 1); dim(fn, 'nSub', nSub, 1); dim(fn, 'half', half, 1); dim(fn, 'k', k, 1);
  const R = T * h, dk = 2 * half, N = nSub * nSub;
  len(fn, 'q', q, R * dk); len(fn, 'keys', keys, 2 * nSub * half); len(fn, 'ids', ids, R * k);
  len(fn, 'gscores', gscores, R * k); len(fn, 'gq', gq, R * dk); len(fn, 'gkeys', gkeys, 2 * nSub * half);
  const acc = new Float64Array(dk);
  const gk = new Float64Array(2 * nSub * half);
  for (let r = 0; r < R; r++) {
    acc.fill(0);
    for (let j = 0; j < k; j++) {
      const id = ids[r * k + j], gs = gscores[r * k + j];
      need(id >= 0 && id < N, fn, `id ${id} out of range [0, ${N})`);
      const i1 = Math.floor(id / nSub), i2 = id % nSub;
      const k1 = i1 * half, k2 = nSub * half + i2 * half;
      for (let c = 0; c < half; c++) {
        acc[c] += gs * keys[k1 + c];
        acc[half + c] += gs * keys[k2 + c];
        gk[k1 + c] += gs * q[r * dk + c];
        gk[k2 + c] += gs * q[r * dk + half + c];
      }
    }
    for (let c = 0; c < dk; c++) gq[r * dk + c] = acc[c];
  }
  for (let i = 0; i < gk.length; i++) gkeys[i] += gk[i];
}

// ------------------------------------------------------------------------------ experts

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
 * Expert forward; see PeerKernels.peerForward. g = softmax over each head's k scores;
 * a[t,j] = u[ids[t,j]] . x[t]; y[t] = sum_j g[t,j] act(a[t,j]) v[ids[t,j]] (pkm, u null: g v).
 */
export function peerForward(T: number, d: number, N: number, hk: number, k: number, act: number,
  x: F32, u: F32 | null, v: F32, ids: I32, scores: F32, g: F32, a: F32 | null, y: F32): void {
  const fn = 'peerForward';
  dim(fn, 'T', T); dim(fn, 'd', d, 1); dim(fn, 'N', N, 1); dim(fn, 'hk', hk, 1); dim(fn, 'k', k, 1);
  need(hk % k === 0, fn, `hk (${hk}) must be a multiple of k (${k})`);
  checkAct(fn, act);
  len(fn, 'x', x, T * d); len(fn, 'v', v, N * d); len(fn, 'ids', ids, T * hk); len(fn, 'scores', scores, T * hk);
  len(fn, 'g', g, T * hk); len(fn, 'y', y, T * d);
  if (u) { len(fn, 'u', u, N * d); len(fn, 'a', a, T * hk); }
  for (let i = 0; i < T * hk; i++) need(ids[i] >= 0 && ids[i] < N, fn, `id ${ids[i]} out of range [0, ${N})`);
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
 * Expert backward, token side; see PeerKernels.peerBackward. With w = g act(a), gw = gy . v[id]:
 *   cv = w (coefficient of gy in v's row gradient), cu = gw g act'(a) (coefficient of x in u's),
 *   gx[t] = sum_j cu[t,j] u[id]   and   gscores = softmax backward of dg = gw act(a).
 */
export function peerBackward(T: number, d: number, N: number, hk: number, k: number, act: number,
  x: F32, u: F32 | null, v: F32, ids: I32, g: F32, a: F32 | null, gy: F32,
  gx: F32 | null, gscores: F32, cu: F32 | null, cv: F32): void {
  const fn = 'peerBackward';
  dim(fn, 'T', T); dim(fn, 'd', d, 1); dim(fn, 'N', N, 1); dim(fn, 'hk', hk, 1); dim(fn, 'k', k, 1);
  need(hk % k === 0, fn, `hk (${hk}) must be a multiple of k (${k})`);
  checkAct(fn, act);
  len(fn, 'x', x, T * d); len(fn, 'v', v, N * d); len(fn, 'ids', ids, T * hk); len(fn, 'g', g, T * hk);
  len(fn, 'gy', gy, T * d); len(fn, 'gscores', gscores, T * hk); len(fn, 'cv', cv, T * hk);
  if (u) { len(fn, 'u', u, N * d); len(fn, 'a', a, T * hk); len(fn, 'gx', gx, T * d); len(fn, 'cu', cu, T * hk); }
  for (let i = 0; i < T * hk; i++) need(ids[i] >= 0 && ids[i] < N, fn, `id ${ids[i]} out of range [0, ${N})`);
  const dg = new Float64Array(hk), acc = new Float64Array(d);
  for (let t = 0; t < T; t++) {
    acc.fill(0);
    for (let j = 0; j < hk; j++) {
      const e = t * hk + j, id = ids[e];
      let gw = 0;
      for (let c = 0; c < d; c++) gw += gy[t * d + c] * v[id * d + c];
      if (u) {
        const av = a![e], f = actF(act, av);
        cv[e] = g[e] * f;
        dg[j] = gw * f;
        const cuv = gw * g[e] * actD(act, av);
        cu![e] = cuv;
        for (let c = 0; c < d; c++) acc[c] += cuv * u[id * d + c];
      } else {
        cv[e] = g[e];
        dg[j] = gw;
      }
    }
    if (u) for (let c = 0; c < d; c++) gx![t * d + c] = acc[c];
    for (let j0 = 0; j0 < hk; j0 += k) {
      let s = 0;
      for (let j = j0; j < j0 + k; j++) s += g[t * hk + j] * dg[j];
      for (let j = j0; j < j0 + k; j++) gscores[t * hk + j] = g[t * hk + j] * (dg[j] - s);
    }
  }
}

/**
 * Expert-major backward; see PeerKernels.peerBackwardRows. Same quantities as peerBackward plus
 * peerRowGrad for both tables, from the coalesced index (uniq, offsets, order) of ids.
 */
export function peerBackwardRows(T: number, d: number, N: number, hk: number, k: number, act: number,
  x: F32, u: F32 | null, v: F32, ids: I32, g: F32, a: F32 | null, gy: F32,
  U: number, uniq: I32, offsets: I32, order: I32, gx: F32 | null, gscores: F32, gu: F32 | null, gv: F32 | null): void {
  const fn = 'peerBackwardRows';
  dim(fn, 'T', T); dim(fn, 'd', d, 1); dim(fn, 'N', N, 1); dim(fn, 'hk', hk, 1); dim(fn, 'k', k, 1); dim(fn, 'U', U);
  need(hk % k === 0, fn, `hk (${hk}) must be a multiple of k (${k})`);
  checkAct(fn, act);
  const n = T * hk;
  len(fn, 'x', x, T * d); len(fn, 'v', v, N * d); len(fn, 'ids', ids, n); len(fn, 'g', g, n); len(fn, 'gy', gy, T * d);
  len(fn, 'uniq', uniq, U); len(fn, 'offsets', offsets, U + 1); len(fn, 'order', order, n); len(fn, 'gscores', gscores, n);
  if (u) { len(fn, 'u', u, N * d); len(fn, 'a', a, n); len(fn, 'gx', gx, T * d); }
  else if (gu) throw new TypeError(`${fn}: 'gu' must be null without u`);
  if (gu) len(fn, 'gu', gu, U * d);
  if (gv) len(fn, 'gv', gv, U * d);
  for (let i = 0; i < n; i++) need(ids[i] >= 0 && ids[i] < N, fn, `id ${ids[i]} out of range [0, ${N})`);
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
  for (let r = 0; r < n; r += k) {
    let s = 0;
    for (let j = r; j < r + k; j++) s += g[j] * dg[j];
    for (let j = r; j < r + k; j++) gscores[j] = g[j] * (dg[j] - s);
  }
}

// ------------------------------------------------------------------------------ row-sparse gradients

/**
 * Stable counting sort of n ids in [0, N); returns U, the number of distinct ids. uniq[0..U) gets
 * them ascending; positions of uniq[i] are order[offsets[i] .. offsets[i+1]) ascending.
 */
export function peerCoalesce(n: number, N: number, ids: I32, uniq: I32, offsets: I32, order: I32): number {
  const fn = 'peerCoalesce';
  dim(fn, 'n', n); dim(fn, 'N', N, 1);
  len(fn, 'ids', ids, n); len(fn, 'uniq', uniq, n); len(fn, 'offsets', offsets, n + 1); len(fn, 'order', order, n);
  const count = new Int32Array(N);
  for (let i = 0; i < n; i++) {
    need(ids[i] >= 0 && ids[i] < N, fn, `id ${ids[i]} out of range [0, ${N})`);
    count[ids[i]]++;
  }
  let U = 0, off = 0;
  for (let id = 0; id < N; id++) {
    if (!count[id]) continue;
    uniq[U] = id;
    offsets[U++] = off;
    const c = count[id];
    count[id] = off; // becomes the write cursor
    off += c;
  }
  offsets[U] = off;
  for (let i = 0; i < n; i++) order[count[ids[i]]++] = i;
  return U;
}

/**
 * out[i, :] = sum_{p in [offsets[i], offsets[i+1])} coef[order[p]] * src[floor(order[p] / per), :]
 * for i < U (coef null means 1). Written, not accumulated.
 */
export function peerRowGrad(U: number, d: number, per: number, offsets: I32, order: I32, coef: F32 | null,
  src: F32, out: F32): void {
  const fn = 'peerRowGrad';
  dim(fn, 'U', U); dim(fn, 'd', d); dim(fn, 'per', per, 1);
  len(fn, 'offsets', offsets, U + 1); len(fn, 'out', out, U * d);
  const rows = d > 0 ? Math.floor(src.length / d) : 0;
  const acc = new Float64Array(d);
  for (let i = 0; i < U; i++) {
    const p0 = offsets[i], p1 = offsets[i + 1];
    need(p0 >= 0 && p0 <= p1 && p1 <= order.length, fn, `offsets[${i}..${i + 1}] = ${p0}..${p1} invalid`);
    acc.fill(0);
    for (let p = p0; p < p1; p++) {
      const pos = order[p];
      need(pos >= 0 && Math.floor(pos / per) < rows && (!coef || pos < coef.length), fn, `order entry ${pos} out of range`);
      const w = coef ? coef[pos] : 1, r = Math.floor(pos / per) * d;
      for (let c = 0; c < d; c++) acc[c] += w * src[r + c];
    }
    for (let c = 0; c < d; c++) out[i * d + c] = acc[c];
  }
}

// ------------------------------------------------------------------------------ query BatchNorm

/** BatchNorm1d forward over the rows of x [T, C]; see PeerKernels.peerBatchNorm. */
export function peerBatchNorm(T: number, C: number, training: boolean, eps: number, momentum: number,
  x: F32, w: F32, b: F32, runMean: F32, runVar: F32, y: F32, mean: F32, rstd: F32): void {
  const fn = 'peerBatchNorm';
  dim(fn, 'T', T); dim(fn, 'C', C, 1);
  need(eps >= 0 && momentum >= 0 && momentum <= 1, fn, 'eps must be >= 0 and momentum in [0, 1]');
  need(!training || T >= 2, fn, 'training needs more than 1 value per channel');
  len(fn, 'x', x, T * C); len(fn, 'y', y, T * C);
  for (const [n, a] of [['w', w], ['b', b], ['runMean', runMean], ['runVar', runVar], ['mean', mean], ['rstd', rstd]] as const) len(fn, n, a, C);
  for (let c = 0; c < C; c++) {
    if (training) {
      let s = 0, q = 0;
      for (let t = 0; t < T; t++) s += x[t * C + c];
      const m = s / T;
      for (let t = 0; t < T; t++) q += (x[t * C + c] - m) ** 2;
      mean[c] = m;
      rstd[c] = 1 / Math.sqrt(q / T + eps);
      runMean[c] = (1 - momentum) * runMean[c] + momentum * m;
      runVar[c] = (1 - momentum) * runVar[c] + momentum * (q / (T - 1));
    } else {
      mean[c] = runMean[c];
      rstd[c] = 1 / Math.sqrt(runVar[c] + eps);
    }
    for (let t = 0; t < T; t++) y[t * C + c] = (x[t * C + c] - mean[c]) * rstd[c] * w[c] + b[c];
  }
}

/** BatchNorm1d backward; see PeerKernels.peerBatchNormBackward. */
export function peerBatchNormBackward(T: number, C: number, training: boolean, x: F32, w: F32, mean: F32, rstd: F32,
  gy: F32, gx: F32, gw: F32, gb: F32): void {
  const fn = 'peerBatchNormBackward';
  dim(fn, 'T', T); dim(fn, 'C', C, 1);
  len(fn, 'x', x, T * C); len(fn, 'gy', gy, T * C); len(fn, 'gx', gx, T * C);
  for (const [n, a] of [['w', w], ['mean', mean], ['rstd', rstd], ['gw', gw], ['gb', gb]] as const) len(fn, n, a, C);
  for (let c = 0; c < C; c++) {
    let sw = 0, sb = 0;
    for (let t = 0; t < T; t++) {
      const o = t * C + c;
      sw += gy[o] * (x[o] - mean[c]) * rstd[c];
      sb += gy[o];
    }
    gw[c] = sw;
    gb[c] = sb;
    for (let t = 0; t < T; t++) {
      const o = t * C + c, xh = (x[o] - mean[c]) * rstd[c];
      // training: the batch statistics depend on x too
      gx[o] = training ? w[c] * rstd[c] * (gy[o] - sb / T - (xh * sw) / T) : w[c] * rstd[c] * gy[o];
    }
  }
}

// ------------------------------------------------------------------------------ sparse Adam

const cvtF = new Float32Array(1);
const cvtU = new Uint32Array(cvtF.buffer);

/** float32 -> bfloat16 bits, round to nearest even (NaN stays a quiet NaN). */
export function f32ToBf16(x: number): number {
  cvtF[0] = x;
  const b = cvtU[0];
  if ((b & 0x7fffffff) > 0x7f800000) return ((b >>> 16) | 0x40) & 0xffff;
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

/** bfloat16 bits -> float32 value. */
export function bf16ToF32(h: number): number {
  cvtU[0] = (h & 0xffff) << 16;
  return cvtF[0];
}

/**
 * Lazy (sparse) Adam, PyTorch SparseAdam semantics, on rows ids[0..U) (strictly increasing) of
 * p [N, d] with coalesced gradient rows g [U, d]; m, v are [N, d] in float32 or bfloat16 bits:
 *   m += (1-beta1)(g - m);  v += (1-beta2)(g^2 - v);  p -= lr sqrt(bc2)/bc1 * m / (sqrt(v) + eps)
 */
export function sparseAdam(U: number, d: number, ids: I32, g: F32, p: F32, m: F32 | U16, v: F32 | U16,
  lr: number, beta1: number, beta2: number, eps: number, bc1: number, bc2: number): void {
  const fn = 'sparseAdam';
  dim(fn, 'U', U); dim(fn, 'd', d, 1);
  len(fn, 'ids', ids, U); len(fn, 'g', g, U * d);
  const N = Math.floor(p.length / d);
  const bf = m instanceof Uint16Array;
  if (bf !== (v instanceof Uint16Array)) throw new TypeError(`${fn}: 'm' and 'v' must have the same type`);
  len(fn, 'm', m, N * d); len(fn, 'v', v, N * d);
  need(bc1 > 0 && bc2 > 0, fn, `bias corrections must be > 0, got ${bc1}, ${bc2}`);
  for (let i = 0; i < U; i++) {
    need(ids[i] >= 0 && ids[i] < N, fn, `id ${ids[i]} out of range [0, ${N})`);
    need(i === 0 || ids[i] > ids[i - 1], fn, `ids must be strictly increasing (ids[${i}] = ${ids[i]})`);
  }
  const step = (lr * Math.sqrt(bc2)) / bc1;
  for (let i = 0; i < U; i++) {
    const row = ids[i] * d;
    for (let c = 0; c < d; c++) {
      const gi = g[i * d + c], o = row + c;
      const m0 = bf ? bf16ToF32(m[o]) : m[o], v0 = bf ? bf16ToF32(v[o]) : v[o];
      const m1 = Math.fround(m0 + (1 - beta1) * (gi - m0));
      const v1 = Math.fround(v0 + (1 - beta2) * (gi * gi - v0));
      if (bf) { m[o] = f32ToBf16(m1); v[o] = f32ToBf16(v1); } else { m[o] = m1; v[o] = v1; }
      p[o] = p[o] - (step * m1) / (Math.sqrt(v1) + eps);
    }
  }
}
